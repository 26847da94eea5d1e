-- The member's orders, so that acting on someone's behalf has something real to do.
-- An order belongs to the member (member_id) and names the real person who placed it
-- (placed_by: the member, or the actor of a session on behalf, which is named too).

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX products_name ON products (name);

CREATE TABLE orders (
    id                   INTEGER PRIMARY KEY,
    member_id            INTEGER NOT NULL REFERENCES members (id),
    product_id           INTEGER NOT NULL REFERENCES products (id),
    quantity             INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    placed_by            INTEGER NOT NULL REFERENCES members (id),
    on_behalf_session_id INTEGER REFERENCES sessions (id),
    created_at           INTEGER NOT NULL
);
CREATE INDEX orders_member ON orders (member_id, id);
