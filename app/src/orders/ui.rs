//! The Orders page of My account (`/account/orders`).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    context::Viewer,
    mode::{Access, VIEW_ONLY_REASON},
    orders::{format_money, list_orders, Order, PlaceOrder, Product},
    ui::{field_error, on_behalf_limit, AccountNav, Column, DataTable, ErrorPanel, LockedReason, Protected},
};

#[component]
pub fn OrdersPage() -> impl IntoView {
    let place = ServerAction::<PlaceOrder>::new();
    // Created here, outside `Protected` (see its note); reloads after each order placed.
    let orders = Resource::new(move || place.version().get(), |_| list_orders());
    view! {
        <Title text="Orders"/>
        <Protected render=move |viewer: Viewer| {
            let locked = on_behalf_limit(&viewer, Access::Write).is_some();
            view! {
                <AccountNav/>
                <section class="card">
                    <h1>"Orders"</h1>
                    <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match orders.await {
                                Ok(view) => view! {
                                    <PlaceOrderForm products=view.products place locked/>
                                    <OrderTable orders=view.orders/>
                                }
                                .into_any(),
                                Err(error) => view! { <ErrorPanel error/> }.into_any(),
                            }
                        })}
                    </Suspense>
                </section>
            }
        }/>
    }
}

/// The order form; `locked`: shown disabled, with the reason (a view-only session on
/// behalf).
#[component]
fn PlaceOrderForm(products: Vec<Product>, place: ServerAction<PlaceOrder>, locked: bool) -> impl IntoView {
    let product_error = field_error(place.value(), "product_id");
    let quantity_error = field_error(place.value(), "quantity");
    let form_error = field_error(place.value(), "");
    let placed = move || matches!(place.value().get(), Some(Ok(_)));
    view! {
        <h2 class="section-title">"Place order"</h2>
        <ActionForm
            action=place
            attr:class=if locked { "form order-form locked" } else { "form order-form" }
            attr:novalidate=true
        >
            {move || form_error.get().map(|message| view! { <div class="notice notice-error" role="alert">{message}</div> })}
            <div class="field">
                <label for="order-product">"Product"</label>
                <select
                    id="order-product"
                    name="product_id"
                    disabled=locked
                    aria-describedby="order-product-error"
                    aria-invalid=move || product_error.get().is_some().then_some("true")
                >
                    {products
                        .into_iter()
                        .map(|p| view! { <option value=p.id>{format!("{} — {}", p.name, format_money(p.price_cents))}</option> })
                        .collect_view()}
                </select>
                <p id="order-product-error" class="field-error">{product_error}</p>
            </div>
            <div class="field">
                <label for="order-quantity">"Quantity"</label>
                <input
                    id="order-quantity"
                    name="quantity"
                    type="number"
                    min="1"
                    max="999"
                    value="1"
                    required
                    disabled=locked
                    aria-describedby="order-quantity-error"
                    aria-invalid=move || quantity_error.get().is_some().then_some("true")
                />
                <p id="order-quantity-error" class="field-error">{quantity_error}</p>
            </div>
            <div>
                <button
                    type="submit"
                    class="button primary"
                    disabled=move || locked || place.pending().get()
                    aria-describedby=locked.then_some("order-locked")
                >
                    "Place order"
                </button>
            </div>
            {locked.then(|| view! { <LockedReason id="order-locked" text=VIEW_ONLY_REASON/> })}
            <p role="status" class="muted">{move || placed().then_some("Order placed.")}</p>
        </ActionForm>
    }
}

#[component]
fn OrderTable(orders: Vec<Order>) -> impl IntoView {
    if orders.is_empty() {
        return view! { <p>"No orders yet."</p> }.into_any();
    }
    view! {
        <DataTable label="Orders" columns=ORDER_COLUMNS>
            {orders
                .into_iter()
                .map(|o| view! {
                    <tr>
                        <td class="numeric">{format!("#{}", o.id)}</td>
                        <td>{o.product}</td>
                        <td class="numeric">{o.quantity}</td>
                        <td class="numeric">{format_money(o.total_cents)}</td>
                        <td>
                            {o.placed}
                            {o.placed_on_behalf_by.map(|by| view! {
                                <span class="badge on-behalf-badge">{format!("placed by {by} on your behalf")}</span>
                            })}
                        </td>
                    </tr>
                })
                .collect_view()}
        </DataTable>
    }
    .into_any()
}

/// The headings of the member's orders.
const ORDER_COLUMNS: &[Column] = &[
    Column::Text("Order"),
    Column::Text("Product"),
    Column::Text("Quantity"),
    Column::Text("Total"),
    Column::Text("Placed"),
];
