//! Tests of snapshot publication: what readers load after each change.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::catalog::model::{ProductPatch, PRODUCT_COUNT};

/// The full seeded catalog, generated once for the whole test binary.
fn seeded() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::seeded)
}

fn price(cents: u64) -> ProductPatch {
    ProductPatch {
        price_cents: Some(cents),
        ..ProductPatch::default()
    }
}

/// Every product of `snapshot` equals the catalog's, JSON included.
fn assert_mirrors(snapshot: &CatalogSnapshot, catalog: &Catalog) {
    assert_eq!(snapshot.len(), catalog.len());
    for product in catalog.all() {
        let entry = snapshot.get(product.id).expect("every id in the snapshot");
        assert_eq!(entry.product(), product);
        assert_eq!(
            entry.json().as_ref(),
            serde_json::to_vec(product).unwrap().as_slice()
        );
    }
}

#[test]
fn an_empty_handle_has_no_snapshot() {
    assert!(CatalogSnapshots::default().load().is_none());
}

#[test]
fn the_first_snapshot_is_the_whole_catalog_with_its_json() {
    let snapshots = CatalogSnapshots::default();
    let _publisher = snapshots.publisher(seeded());
    let snapshot = snapshots.load().expect("published at once");
    assert_eq!(snapshot.version(), 1);
    assert_mirrors(&snapshot, seeded());
    assert!(snapshot.get(0).is_none());
    assert!(snapshot.get(PRODUCT_COUNT + 1).is_none());
    let json: serde_json::Value = serde_json::from_slice(snapshot.get(42).unwrap().json()).unwrap();
    assert_eq!(json["id"], 42);
}

#[test]
fn a_read_after_an_update_sees_it() {
    let mut catalog = seeded().clone();
    let snapshots = CatalogSnapshots::default();
    let publisher = snapshots.publisher(&catalog);
    let before = snapshots.load().unwrap();

    let updated = catalog.apply_patch(42, &price(1_234), "n1").unwrap();
    let version = publisher.publish(&catalog, [42]);

    let after = snapshots.load().unwrap();
    assert_eq!(version, 2);
    assert_eq!(after.version(), 2);
    assert_eq!(after.get(42).unwrap().product(), &updated);
    assert_eq!(after.get(42).unwrap().product().price_cents, 1_234);
    let json: serde_json::Value = serde_json::from_slice(after.get(42).unwrap().json()).unwrap();
    assert_eq!(json["price_cents"], 1_234);
    assert_eq!(json["version"], updated.version);
    assert_mirrors(&after, &catalog);
    // Unchanged products are shared between versions, not copied.
    assert!(Arc::ptr_eq(before.get(41).unwrap(), after.get(41).unwrap()));
}

#[test]
fn a_reader_keeps_the_whole_version_it_loaded() {
    let mut catalog = seeded().clone();
    let snapshots = CatalogSnapshots::default();
    let publisher = snapshots.publisher(&catalog);
    let held = snapshots.load().unwrap();
    let page_before: Vec<Product> = held.page(0, 10).map(|e| e.product().clone()).collect();

    for id in 1..=10 {
        catalog.apply_patch(id, &price(id * 100), "n1").unwrap();
        publisher.publish(&catalog, [id]);
    }

    // The loaded snapshot did not move: a page read from it is one version.
    let page_again: Vec<Product> = held.page(0, 10).map(|e| e.product().clone()).collect();
    assert_eq!(page_before, page_again);
    assert_eq!(held.version(), 1);
    assert_mirrors(&held, seeded());
    let now = snapshots.load().unwrap();
    assert_eq!(now.version(), 11);
    assert!(now.page(0, 10).all(|e| e.product().version == 2));
}

#[test]
fn replicated_and_unchanged_ids_publish_what_the_catalog_holds() {
    let mut catalog = seeded().clone();
    let snapshots = CatalogSnapshots::default();
    let publisher = snapshots.publisher(&catalog);

    // A version from a peer, merged by the store, then published.
    let mut remote = catalog.get(7).unwrap().clone();
    remote.version = 5;
    remote.updated_by = "n2".into();
    remote.stock = 3;
    assert!(catalog.merge(remote.clone()));
    publisher.publish(&catalog, [7, 8, 0, PRODUCT_COUNT + 5]);

    let snapshot = snapshots.load().unwrap();
    assert_eq!(snapshot.get(7).unwrap().product(), &remote);
    assert_mirrors(&snapshot, &catalog);
}

#[test]
fn pages_match_the_catalog() {
    let snapshots = CatalogSnapshots::default();
    let _publisher = snapshots.publisher(seeded());
    let snapshot = snapshots.load().unwrap();
    for (offset, limit) in [
        (0, 20),
        (100, 20),
        (9_990, 20),
        (10_000, 5),
        (usize::MAX, 5),
        (3, 0),
        (0, 500),
        (usize::MAX - 1, usize::MAX),
    ] {
        let page: Vec<Product> = snapshot
            .page(offset, limit)
            .map(|e| e.product().clone())
            .collect();
        assert_eq!(
            page,
            seeded().page(offset, limit),
            "offset {offset} limit {limit}"
        );
    }
}

#[test]
fn a_second_publisher_continues_the_versions() {
    let snapshots = CatalogSnapshots::default();
    let first = snapshots.publisher(seeded());
    first.publish(seeded(), [1]);
    let again = snapshots.publisher(seeded());
    assert_eq!(snapshots.load().unwrap().version(), 3);
    assert_eq!(again.publish(seeded(), []), 4);
    assert!(Arc::ptr_eq(
        &first.snapshots().shared,
        &again.snapshots().shared
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Whatever mix of local updates and merges the store applies, the
    /// snapshot published after each one is the catalog, and versions
    /// (the snapshot's and each product's) only move forward.
    #[test]
    fn snapshots_follow_the_catalog_forward(
        changes in prop::collection::vec((1u64..=30, 1u64..1_000, any::<bool>()), 1..20)
    ) {
        let mut catalog = seeded().clone();
        let snapshots = CatalogSnapshots::default();
        let publisher = snapshots.publisher(&catalog);
        let mut previous = snapshots.load().unwrap();
        for (id, cents, local) in changes {
            if local {
                catalog.apply_patch(id, &price(cents), "n1").unwrap();
            } else {
                let mut remote = catalog.get(id).unwrap().clone();
                remote.version += cents % 3;
                remote.updated_by = "n2".into();
                remote.price_cents = cents;
                catalog.merge(remote);
            }
            publisher.publish(&catalog, [id]);
            let snapshot = snapshots.load().unwrap();
            prop_assert_eq!(snapshot.version(), previous.version() + 1);
            prop_assert_eq!(snapshot.get(id).unwrap().product(), catalog.get(id).unwrap());
            for (old, new) in previous.page(0, 300).zip(snapshot.page(0, 300)) {
                prop_assert!(new.product().version >= old.product().version);
            }
            previous = snapshot;
        }
        assert_mirrors(&previous, &catalog);
    }
}
