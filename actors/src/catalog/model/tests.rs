//! Tests of the catalog model: the seed, validation, and replica convergence.

use std::collections::HashSet;

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

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

fn describe_as(text: &str) -> ProductPatch {
    ProductPatch {
        description: Some(text.to_owned()),
        ..ProductPatch::default()
    }
}

#[test]
fn seed_is_deterministic() {
    assert_eq!(seed_products(), seed_products());
    assert_eq!(&Catalog::seeded(), seeded());
}

#[test]
fn seed_matches_recorded_values() {
    // Recorded from the generator: a change here changes every node's data.
    let catalog = seeded();
    let first = catalog.get(1).unwrap();
    assert_eq!(first.name, "Handmade Pine Bench");
    assert_eq!(first.category, "Furniture");
    assert_eq!(
        first.description,
        "A handmade bench for busy mornings. \
         Popular with customers who value a fair price. \
         Ships within 5 business days."
    );
    assert_eq!((first.price_cents, first.stock), (44_799, 448));
    let middle = catalog.get(5_000).unwrap();
    assert_eq!(middle.name, "Essential Felt Planner");
    assert_eq!((middle.price_cents, middle.stock), (42_699, 311));
    let last = catalog.get(PRODUCT_COUNT).unwrap();
    assert_eq!(last.name, "Urban Enamel Serving Bowl");
    assert_eq!((last.price_cents, last.stock), (90_499, 172));
    let total_cents: u64 = catalog.all().map(|p| p.price_cents).sum();
    let total_stock: u64 = catalog.all().map(|p| u64::from(p.stock)).sum();
    assert_eq!((total_cents, total_stock), (502_876_400, 2_509_112));
}

#[test]
fn seed_holds_every_id_once_in_order() {
    let catalog = seeded();
    assert_eq!(catalog.len() as u64, PRODUCT_COUNT);
    assert!(catalog.all().map(|p| p.id).eq(1..=PRODUCT_COUNT));
    for id in [1, 2, 4_999, PRODUCT_COUNT] {
        assert_eq!(catalog.get(id).unwrap().id, id);
    }
    assert_eq!(catalog.get(0), None);
    assert_eq!(catalog.get(PRODUCT_COUNT + 1), None);
    assert_eq!(catalog.get(u64::MAX), None);
}

#[test]
fn seed_products_are_plausible() {
    let catalog = seeded();
    let mut names = HashSet::new();
    let mut categories = HashSet::new();
    for p in catalog.all() {
        assert!(names.insert(p.name.as_str()), "duplicate name {}", p.name);
        categories.insert(p.category.as_str());
        assert!(p.name.split(' ').count() >= 3, "{}", p.name);
        let sentences = p.description.matches(". ").count() + 1;
        assert!((1..=3).contains(&sentences), "{}", p.description);
        assert!(p.description.ends_with('.'));
        assert!((199..=99_999).contains(&p.price_cents));
        assert!(p.stock <= 500);
        assert_eq!(p.currency, "EUR");
        assert_eq!((p.version, p.updated_by.as_str()), (1, SEED_ORIGIN));
        assert_eq!(validate_product(p), Ok(()));
    }
    assert!((10..=20).contains(&categories.len()));
    assert_eq!(catalog.changes(), vec![]);
}

#[test]
fn page_is_id_ordered_and_clamped() {
    let catalog = seeded();
    let page = catalog.page(10, 5);
    assert!(page.iter().map(|p| p.id).eq(11..=15));
    assert_eq!(catalog.page(0, 10_000).len(), MAX_PAGE);
    assert_eq!(catalog.page(0, 0), vec![]);
    assert_eq!(catalog.page(PRODUCT_COUNT as usize - 2, 10).len(), 2);
    assert_eq!(catalog.page(usize::MAX, 10), vec![]);
}

#[test]
fn apply_patch_increments_version_and_stamps_origin() {
    let mut catalog = Catalog::generated(10);
    let patch = ProductPatch {
        price_cents: Some(1_234),
        stock: Some(7),
        description: Some("Now with a longer cord.".to_owned()),
    };
    let updated = catalog.apply_patch(3, &patch, "node-b").unwrap();
    assert_eq!(
        (updated.version, updated.updated_by.as_str()),
        (2, "node-b")
    );
    assert_eq!((updated.price_cents, updated.stock), (1_234, 7));
    assert_eq!(updated.description, "Now with a longer cord.");
    assert_eq!(catalog.get(3), Some(&updated));

    let again = catalog.apply_patch(3, &price(999), "node-a").unwrap();
    assert_eq!((again.version, again.price_cents, again.stock), (3, 999, 7));
    assert_eq!(catalog.changes(), vec![again]);
}

#[test]
fn apply_patch_rejects_invalid_input_without_change() {
    let mut catalog = Catalog::generated(10);
    let before = catalog.clone();
    let too_long = "x".repeat(MAX_DESCRIPTION_CHARS + 1);
    let cases = [
        (1, ProductPatch::default(), CatalogError::EmptyPatch),
        (1, price(0), CatalogError::InvalidPrice),
        (1, price(MAX_PRICE_CENTS + 1), CatalogError::InvalidPrice),
        (1, describe_as(""), CatalogError::EmptyDescription),
        (1, describe_as(" \n\t"), CatalogError::EmptyDescription),
        (
            1,
            describe_as(&too_long),
            CatalogError::DescriptionTooLong {
                max: MAX_DESCRIPTION_CHARS,
            },
        ),
        (0, price(100), CatalogError::NotFound(0)),
        (11, price(100), CatalogError::NotFound(11)),
    ];
    for (id, patch, expected) in cases {
        assert_eq!(catalog.apply_patch(id, &patch, "n"), Err(expected));
    }
    assert_eq!(catalog, before);
}

#[test]
fn apply_patch_accepts_bounds() {
    let mut catalog = Catalog::generated(2);
    assert!(catalog.apply_patch(1, &price(MIN_PRICE_CENTS), "n").is_ok());
    assert!(catalog.apply_patch(1, &price(MAX_PRICE_CENTS), "n").is_ok());
    // The limit counts characters, not bytes.
    let longest = "é".repeat(MAX_DESCRIPTION_CHARS);
    assert!(catalog.apply_patch(2, &describe_as(&longest), "n").is_ok());
}

#[test]
fn apply_patch_refuses_version_overflow() {
    let mut catalog = Catalog::generated(1);
    let mut maxed = catalog.get(1).unwrap().clone();
    maxed.version = u64::MAX;
    assert!(catalog.merge(maxed));
    assert_eq!(
        catalog.apply_patch(1, &price(500), "n"),
        Err(CatalogError::VersionOverflow(1))
    );
}

#[test]
fn errors_read_lowercase_and_are_permanent() {
    let errors = [
        CatalogError::NotFound(4),
        CatalogError::EmptyPatch,
        CatalogError::InvalidPrice,
        CatalogError::EmptyDescription,
        CatalogError::DescriptionTooLong { max: 2 },
        CatalogError::VersionOverflow(4),
    ];
    for error in errors {
        let message = error.to_string();
        assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
        assert!(!message.ends_with('.'));
        assert!(!error.is_retryable());
    }
    assert_eq!(
        CatalogError::InvalidPrice.to_string(),
        "price must be between 1 and 100000000 cents"
    );
}

#[test]
fn merge_ignores_unknown_ids_and_invalid_versions() {
    let mut catalog = Catalog::generated(3);
    let before = catalog.clone();
    let mut unknown = catalog.get(1).unwrap().clone();
    unknown.id = 4;
    unknown.version = 9;
    assert!(!catalog.merge(unknown));
    let mut free = catalog.get(1).unwrap().clone();
    free.version = 9;
    free.price_cents = 0;
    assert!(!catalog.merge(free));
    let mut blank = catalog.get(1).unwrap().clone();
    blank.version = 9;
    blank.description.clear();
    assert!(!catalog.merge(blank));
    assert_eq!(catalog, before);
}

#[test]
fn merge_breaks_version_ties_by_origin() {
    let mut catalog = Catalog::generated(1);
    let mut from_a = catalog.get(1).unwrap().clone();
    (from_a.version, from_a.updated_by, from_a.stock) = (2, "node-a".into(), 1);
    let mut from_b = from_a.clone();
    (from_b.updated_by, from_b.stock) = ("node-b".into(), 2);
    assert!(catalog.merge(from_b.clone()));
    assert!(!catalog.merge(from_a));
    assert_eq!(catalog.get(1), Some(&from_b));
}

/// Arbitrary valid versions of products 1..=4 from three nodes. Equal
/// `(id, version, origin)` with different content are deliberately possible.
fn product_version() -> impl Strategy<Value = Product> {
    (
        1..=4u64,
        1..=5u64,
        prop::sample::select(vec!["seed", "node-a", "node-b"]),
        1..=3u64,
        0..=2u32,
        prop::sample::select(vec!["Old text.", "New text.", "Other text."]),
    )
        .prop_map(|(id, version, origin, price, stock, description)| {
            let mut product = seeded().get(id).unwrap().clone();
            product.version = version;
            product.updated_by = origin.to_owned();
            product.price_cents = price;
            product.stock = stock;
            product.description = description.to_owned();
            product
        })
}

proptest! {
    #[test]
    fn replicas_converge_whatever_the_delivery_order(
        (versions, order) in prop::collection::vec(product_version(), 0..24)
            .prop_flat_map(|versions| {
                // A delivery order: every version at least once, some twice.
                let n = versions.len();
                let dups = prop::collection::vec(0..n.max(1), 0..=n);
                (Just(versions), dups).prop_flat_map(move |(versions, dups)| {
                    let mut order: Vec<usize> = (0..n).collect();
                    order.extend(dups.into_iter().filter(|_| n > 0));
                    (Just(versions), Just(order).prop_shuffle())
                })
            })
    ) {
        let mut in_order = Catalog::generated(4);
        for version in &versions {
            in_order.merge(version.clone());
        }
        let mut shuffled = Catalog::generated(4);
        for &i in &order {
            shuffled.merge(versions[i].clone());
        }
        prop_assert_eq!(&in_order, &shuffled);

        // Both equal the greatest version seen per id (or the seed).
        for id in 1..=4 {
            let seed = seeded().get(id).unwrap();
            let best = versions
                .iter()
                .filter(|p| p.id == id)
                .chain([seed])
                .max_by(|a, b| precedence(a, b))
                .unwrap();
            prop_assert_eq!(in_order.get(id), Some(best));
        }
    }

    #[test]
    fn merge_is_idempotent(versions in prop::collection::vec(product_version(), 1..12)) {
        let mut catalog = Catalog::generated(4);
        for version in &versions {
            catalog.merge(version.clone());
        }
        let once = catalog.clone();
        for version in &versions {
            prop_assert!(!catalog.merge(version.clone()));
        }
        prop_assert_eq!(catalog, once);
    }

    #[test]
    fn lower_version_never_overwrites_higher(a in product_version(), b in product_version()) {
        let (mut low, mut high) = if a.version <= b.version { (a, b) } else { (b, a) };
        prop_assume!(low.version < high.version);
        low.id = 1;
        high.id = 1;
        let mut catalog = Catalog::generated(1);
        catalog.merge(high.clone());
        prop_assert!(!catalog.merge(low));
        prop_assert_eq!(catalog.get(1), Some(&high));
    }

    #[test]
    fn a_new_replica_catches_up_from_changes(
        patches in prop::collection::vec((1..=3u64, 0..=500u32, "node-[a-c]"), 0..8),
    ) {
        let mut source = Catalog::generated(3);
        for (id, stock, origin) in &patches {
            let patch = ProductPatch { stock: Some(*stock), ..ProductPatch::default() };
            source.apply_patch(*id, &patch, origin).unwrap();
        }
        let mut replica = Catalog::generated(3);
        for change in source.changes() {
            prop_assert!(replica.merge(change));
        }
        prop_assert_eq!(replica, source);
    }
}
