//! The member's orders: what they (or someone on their behalf) placed, and placing one.

use leptos::{prelude::*, server_fn::codec::PostUrl};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[cfg(feature = "ssr")]
pub mod service;
pub mod ui;

/// Quantities an order may have.
pub const QUANTITY: std::ops::RangeInclusive<i64> = 1..=999;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: i64,
    pub product: String,
    pub quantity: i64,
    pub total_cents: i64,
    pub placed: String,
    /// The real person who placed it when that was not the member (on their behalf).
    pub placed_on_behalf_by: Option<String>,
}

/// The Orders page: the catalogue and the member's orders (newest first, at most 100).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrdersView {
    pub products: Vec<Product>,
    pub orders: Vec<Order>,
}

/// "12.50" for 1250 cents.
pub fn format_money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Checks a quantity as typed.
pub fn check_quantity(text: &str) -> Result<i64, AppError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|q| QUANTITY.contains(q))
        .ok_or_else(|| {
            AppError::validation(
                "quantity",
                format!(
                    "Enter a whole number from {} to {}.",
                    QUANTITY.start(),
                    QUANTITY.end()
                ),
            )
        })
}

#[server(prefix = "/api", endpoint = "orders/list", input = PostUrl)]
pub async fn list_orders() -> Result<OrdersView, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::list(&state, &request).await
}

/// Places an order for the signed-in member (or, on behalf, for the member, placed by
/// the actor). Writes the order and its audit record in one transaction.
#[server(prefix = "/api", endpoint = "orders/place", input = PostUrl)]
pub async fn place_order(product_id: String, quantity: String) -> Result<i64, AppError> {
    use crate::server::server_context;

    let (state, request) = server_context()?;
    service::place(&state, &request, &product_id, &quantity).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_whole_numbers_from_1_to_999() {
        assert_eq!(check_quantity(" 3 ").unwrap(), 3);
        assert_eq!(check_quantity("999").unwrap(), 999);
        for bad in ["0", "1000", "-1", "2.5", "", "x", "99999999999999999999"] {
            assert_eq!(
                check_quantity(bad).unwrap_err().field(),
                Some("quantity"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn money_has_two_decimals() {
        assert_eq!(format_money(1250), "12.50");
        assert_eq!(format_money(7), "0.07");
    }
}
