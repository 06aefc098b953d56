use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn id(n: u128) -> RequestId {
    RequestId(n)
}

fn add(product_id: u64, quantity: u32) -> CartChange {
    CartChange::Add {
        product_id,
        quantity,
    }
}

#[test]
fn add_remove_clear_bump_the_version() {
    let mut cart = Cart::new("user001");
    assert_eq!(cart.apply(&add(7, 2), id(1)), Ok(Applied::Changed));
    assert_eq!(cart.apply(&add(7, 3), id(2)), Ok(Applied::Changed));
    assert_eq!(cart.apply(&add(9, 1), id(3)), Ok(Applied::Changed));
    assert_eq!(cart.items, BTreeMap::from([(7, 5), (9, 1)]));
    assert_eq!(
        cart.apply(&CartChange::Remove { product_id: 7 }, id(4)),
        Ok(Applied::Changed)
    );
    assert_eq!(cart.items, BTreeMap::from([(9, 1)]));
    assert_eq!(cart.apply(&CartChange::Clear, id(5)), Ok(Applied::Changed));
    assert!(cart.is_empty());
    assert_eq!(cart.version, 5);
}

#[test]
fn a_retried_request_is_applied_once() {
    let mut cart = Cart::new("user001");
    assert_eq!(cart.apply(&add(7, 2), id(1)), Ok(Applied::Changed));
    assert_eq!(cart.apply(&add(7, 2), id(1)), Ok(Applied::Duplicate));
    assert_eq!(cart.items[&7], 2);
    assert_eq!(cart.version, 1);
}

#[test]
fn quantities_are_bounded() {
    let mut cart = Cart::new("user001");
    assert_eq!(
        cart.apply(&add(1, 0), id(1)),
        Err(CartError::InvalidQuantity {
            quantity: 0,
            max: MAX_QUANTITY
        })
    );
    assert_eq!(
        cart.apply(&add(1, 100), id(2)),
        Err(CartError::InvalidQuantity {
            quantity: 100,
            max: MAX_QUANTITY
        })
    );
    assert_eq!(cart.apply(&add(1, 99), id(3)), Ok(Applied::Changed));
    assert_eq!(
        cart.apply(&add(1, 1), id(4)),
        Err(CartError::QuantityTooHigh {
            product_id: 1,
            max: MAX_QUANTITY
        })
    );
    assert_eq!(cart.version, 1, "refused changes leave no trace");
    assert!(!cart.has_applied(id(4)));
}

#[test]
fn distinct_items_are_bounded() {
    let mut cart = Cart::new("user001");
    for product in 1..=MAX_ITEMS as u64 {
        cart.apply(&add(product, 1), id(u128::from(product)))
            .unwrap();
    }
    assert_eq!(
        cart.apply(&add(1000, 1), id(1000)),
        Err(CartError::TooManyItems { max: MAX_ITEMS })
    );
    // More of a product already there is still fine.
    assert_eq!(cart.apply(&add(1, 1), id(1001)), Ok(Applied::Changed));
}

#[test]
fn request_ids_are_forgotten_after_the_window() {
    let mut cart = Cart::new("user001");
    for n in 0..(RECENT_REQUESTS as u128 + 5) {
        cart.apply(&CartChange::Clear, id(n)).unwrap();
    }
    assert_eq!(cart.recent.len(), RECENT_REQUESTS);
    assert!(!cart.has_applied(id(0)));
    assert!(cart.has_applied(id(RECENT_REQUESTS as u128 + 4)));
}

#[test]
fn keyed_request_ids_are_stable_and_scoped() {
    assert_eq!(RequestId::from_key("a", "k"), RequestId::from_key("a", "k"));
    assert_ne!(RequestId::from_key("a", "k"), RequestId::from_key("b", "k"));
    assert_ne!(
        RequestId::from_key("ab", "c"),
        RequestId::from_key("a", "bc")
    );
}

#[test]
fn the_backup_takes_only_newer_copies() {
    let mut held = Cart::new("u");
    held.apply(&add(1, 1), id(1)).unwrap();
    let mut newer = held.clone();
    newer.apply(&add(2, 1), id(2)).unwrap();
    let mut rival = held.clone();
    rival.apply(&add(3, 1), id(3)).unwrap();

    assert_eq!(backup_decision(None, &held), BackupDecision::Apply);
    assert_eq!(backup_decision(Some(&held), &newer), BackupDecision::Apply);
    assert_eq!(
        backup_decision(Some(&newer), &newer),
        BackupDecision::AlreadyHeld
    );
    assert_eq!(
        backup_decision(Some(&newer), &held),
        BackupDecision::Conflict
    );
    assert_eq!(
        backup_decision(Some(&newer), &rival),
        BackupDecision::Conflict
    );
}

#[test]
fn validate_rejects_broken_copies() {
    let mut cart = Cart::new("u");
    cart.items.insert(1, 0);
    assert!(cart.validate().is_err());
    cart.items.insert(1, 100);
    assert!(cart.validate().is_err());
    cart.items.clear();
    cart.items.extend((0..=MAX_ITEMS as u64).map(|p| (p, 1)));
    assert!(cart.validate().is_err());
    cart.items.clear();
    cart.recent = (0..=RECENT_REQUESTS as u128).map(RequestId).collect();
    assert!(cart.validate().is_err());
}

fn change() -> impl Strategy<Value = CartChange> {
    prop_oneof![
        6 => (1u64..60, 0u32..=120).prop_map(|(p, q)| add(p, q)),
        2 => (1u64..60).prop_map(|product_id| CartChange::Remove { product_id }),
        1 => Just(CartChange::Clear),
    ]
}

/// Changes with request ids drawn from a small pool, so retries happen.
fn history() -> impl Strategy<Value = Vec<(CartChange, u128)>> {
    prop::collection::vec((change(), 0u128..40), 0..120)
}

/// Copies of one cart along diverging histories.
fn copies() -> impl Strategy<Value = Vec<Cart>> {
    prop::collection::vec(history(), 1..5).prop_map(|histories| {
        histories
            .into_iter()
            .map(|history| {
                let mut cart = Cart::new("u");
                for (change, n) in history {
                    let _ = cart.apply(&change, RequestId(n));
                }
                cart
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn applying_keeps_the_invariants(history in history()) {
        let mut cart = Cart::new("u");
        let mut changed = 0u64;
        for (change, n) in history {
            let before = cart.clone();
            match cart.apply(&change, RequestId(n)) {
                Ok(Applied::Changed) => changed += 1,
                Ok(Applied::Duplicate) | Err(_) => prop_assert_eq!(&cart, &before),
            }
            prop_assert!(cart.validate().is_ok());
        }
        prop_assert_eq!(cart.version, changed);
    }

    #[test]
    fn a_repeated_request_changes_nothing(history in history(), change in change()) {
        let mut cart = Cart::new("u");
        for (change, n) in history {
            let _ = cart.apply(&change, RequestId(n));
        }
        let retry = RequestId(1_000);
        if cart.apply(&change, retry).is_ok() {
            let once = cart.clone();
            prop_assert_eq!(cart.apply(&change, retry), Ok(Applied::Duplicate));
            prop_assert_eq!(cart, once);
        }
    }

    #[test]
    fn merging_is_order_independent(copies in copies(), seed in any::<u64>()) {
        let fold = |order: &[Cart]| {
            let mut merged = Cart::new("u");
            for copy in order {
                merged.merge(copy.clone());
            }
            merged
        };
        let forward = fold(&copies);
        let mut shuffled = copies.clone();
        // A cheap deterministic shuffle, plus duplicates.
        shuffled.rotate_left((seed as usize) % copies.len());
        shuffled.reverse();
        shuffled.extend(copies.iter().cloned());
        prop_assert_eq!(&forward, &fold(&shuffled));
        // The result is the highest copy and never below any input.
        for copy in &copies {
            prop_assert!(precedence(&forward, copy) != std::cmp::Ordering::Less);
        }
    }

    #[test]
    fn a_backup_never_goes_back(copies in copies()) {
        let mut held: Option<Cart> = None;
        for incoming in copies {
            let before = held.clone();
            match backup_decision(held.as_ref(), &incoming) {
                BackupDecision::Apply => held = Some(incoming),
                BackupDecision::AlreadyHeld => prop_assert_eq!(held.as_ref(), Some(&incoming)),
                BackupDecision::Conflict => {
                    let held = held.as_ref().expect("a conflict needs a held copy");
                    prop_assert!(held.version >= incoming.version && *held != incoming);
                }
            }
            if let (Some(before), Some(after)) = (before, held.as_ref()) {
                prop_assert!(after.version >= before.version);
            }
        }
    }
}

#[test]
fn subtracting_what_was_bought_keeps_later_adds() {
    let add = |product_id, quantity| CartChange::Add {
        product_id,
        quantity,
    };
    let bought = CartChange::Subtract {
        product_id: 7,
        quantity: 2,
    };
    // The purchase's subtraction arrives after the shopper added more: in
    // either order the cart ends the same.
    let mut late = Cart::new("u");
    late.apply(&add(7, 2), id(1)).unwrap();
    late.apply(&add(7, 1), id(2)).unwrap();
    late.apply(&bought, id(3)).unwrap();
    let mut early = Cart::new("u");
    early.apply(&add(7, 2), id(1)).unwrap();
    early.apply(&bought, id(3)).unwrap();
    early.apply(&add(7, 1), id(2)).unwrap();
    assert_eq!(late.items, early.items);
    assert_eq!(late.items.get(&7), Some(&1));
    // Down to zero removes the product; below zero is zero.
    late.apply(&bought, id(4)).unwrap();
    assert!(late.items.is_empty());
    assert_eq!(late.apply(&bought, id(4)), Ok(Applied::Duplicate));
}
