//! The data table every list page uses: a labelled table in its scrolling frame, with
//! a row of column headings and the rows the caller renders.

use leptos::prelude::*;

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
