use proptest::prelude::*;

use super::*;

fn order(user: &str, key: &str, product_id: u64, quantity: u32) -> Order {
    Order {
        order_id: format!("o1-{key}"),
        idempotency_key: key.into(),
        user: user.into(),
        items: vec![OrderItem {
            product_id,
            name: "thing".into(),
            quantity,
            price_cents: 100,
        }],
        total_cents: 100 * quantity as u64,
        payment_id: "pay".into(),
        epoch: 1,
        created_ms: 0,
    }
}

fn book() -> OrderBook {
    OrderBook::new([(1, 10), (2, 0)].into())
}

#[test]
fn orders_draw_down_stock_and_are_found_by_key() {
    let mut book = book();
    book.apply(&Record::Order(order("u1", "k1", 1, 3)));
    assert_eq!(book.available(1), 7);
    assert_eq!(book.find("u1", "k1").map(|o| o.total_cents), Some(300));
    assert!(book.find("u2", "k1").is_none(), "keys are per user");
    assert_eq!(book.orders_of("u1").count(), 1);
}

#[test]
fn stock_checks_refuse_overselling_and_empty_carts() {
    let mut book = book();
    book.apply(&Record::SetStock {
        product_id: 2,
        stock: 4,
    });
    assert!(book.check_stock(&[(2, 4)].into()).is_ok());
    assert_eq!(
        book.check_stock(&[(2, 5)].into()),
        Err(OrderError::InsufficientStock {
            product_id: 2,
            available: 4
        })
    );
    assert_eq!(
        book.check_stock(&BTreeMap::new()),
        Err(OrderError::EmptyCart)
    );
    assert_eq!(book.available(99), 0, "unknown products have no stock");
}

#[test]
fn keys_are_validated() {
    assert!(validate_key("abc").is_ok());
    assert_eq!(validate_key(""), Err(OrderError::BadKey));
    assert_eq!(validate_key(&"x".repeat(129)), Err(OrderError::BadKey));
}

proptest! {
    /// Stock equals the base minus what checked orders took, whatever the
    /// sequence of orders and restocks.
    #[test]
    fn stock_is_base_minus_sold(ops in prop::collection::vec((0u32..4, 1u32..5, any::<bool>()), 0..50)) {
        let mut book = OrderBook::new([(1, 20)].into());
        let mut expected: u32 = 20;
        for (n, (restock, quantity, is_order)) in ops.into_iter().enumerate() {
            if is_order {
                if book.check_stock(&[(1, quantity)].into()).is_ok() {
                    book.apply(&Record::Order(order("u", &n.to_string(), 1, quantity)));
                    expected -= quantity;
                }
            } else {
                book.apply(&Record::SetStock { product_id: 1, stock: restock * 5 });
                expected = restock * 5;
            }
            prop_assert_eq!(book.available(1), expected);
        }
    }
}
