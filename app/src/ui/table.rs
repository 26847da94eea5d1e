//! The data table every list page uses: a labelled table in its scrolling frame, with
//! a row of column headings and the rows the caller renders; and the click on a row
//! that opens its blade.

use leptos::{ev, prelude::*, wasm_bindgen::JsCast};
use leptos_router::{hooks::use_navigate, NavigateOptions};

/// A column of a `DataTable`, as its heading shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Text(&'static str),
    /// A column of numbers, aligned right like them.
    Numeric(&'static str),
    /// The column of a row's buttons: its heading is for screen readers only.
    Actions,
}

impl Column {
    fn heading(self) -> AnyView {
        match self {
            Column::Text(label) => view! { <th scope="col">{label}</th> }.into_any(),
            Column::Numeric(label) => view! { <th scope="col" class="numeric">{label}</th> }.into_any(),
            Column::Actions => {
                view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> }.into_any()
            }
        }
    }
}

/// The headings as nested pairs rather than a list, which would add a hydration marker
/// after them: the table comes out exactly as if each heading were written by hand.
fn headings(columns: &[Column]) -> AnyView {
    match columns {
        [] => ().into_any(),
        [last] => last.heading(),
        [first, rest @ ..] => (first.heading(), headings(rest)).into_any(),
    }
}

/// A table named `label` (its accessible name) with a heading per column and the rows
/// given as its children.
#[component]
pub fn DataTable(
    label: &'static str,
    columns: &'static [Column],
    /// The table's classes.
    #[prop(default = "data-table")]
    class: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class=class aria-label=label>
                <thead>
                    <tr>{headings(columns)}</tr>
                </thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}

/// What inside a list row acts by itself: a click on one of these is its own, not the row's.
const ROW_CONTROLS: &str =
    "a, button, input, select, textarea, label, summary, [role=\"button\"], [contenteditable]";

/// The `on:click` of a list row that opens a blade (in Virto a click anywhere on a row
/// opens it): goes to `href`, the address of the row's own link, as that link would.
/// Clicks that are not the row's are left alone: one on a control inside the row (the
/// link itself, a Remove button…), and a modified or non-primary click (new tab, new
/// window), which stays the browser's. The row's link remains the way in for keyboard
/// and screen-reader users; the row itself is not focusable and has no role of its own.
pub fn open_blade_on_row_click(href: String) -> impl Fn(ev::MouseEvent) + 'static {
    let navigate = use_navigate();
    move |event: ev::MouseEvent| {
        if is_plain_row_click(&event) {
            navigate(&href, NavigateOptions::default());
        }
    }
}

fn is_plain_row_click(event: &ev::MouseEvent) -> bool {
    let modified =
        event.button() != 0 || event.ctrl_key() || event.meta_key() || event.shift_key() || event.alt_key();
    if modified || event.default_prevented() {
        return false;
    }
    let on_control = event
        .target()
        .and_then(|target| target.dyn_into::<leptos::web_sys::Element>().ok())
        .and_then(|element| element.closest(ROW_CONTROLS).ok().flatten())
        .is_some();
    !on_control
}
