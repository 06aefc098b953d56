//! Tests of search snapshot publication: what queries see after each batch.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

/// The first 300 seeded products, generated once.
fn products() -> &'static [Product] {
    static PRODUCTS: OnceLock<Vec<Product>> = OnceLock::new();
    PRODUCTS.get_or_init(|| seed_products().into_iter().take(300).collect())
}

/// Product `id` with a new description, one version up, made by `origin`.
fn described(base: &Product, version: u64, origin: &str, text: &str) -> Product {
    Product {
        description: text.to_string(),
        version,
        updated_by: origin.to_string(),
        ..base.clone()
    }
}

/// `(id, score bits)` of a query: equal only if the results are identical.
fn results(state: &SearchState, query: &str) -> Vec<(u64, u64)> {
    state
        .search(query, 50)
        .unwrap()
        .iter()
        .map(|found| (found.entry.product().id, found.score.to_bits()))
        .collect()
}

#[test]
fn the_first_snapshot_is_published_at_once() {
    let snapshots = SearchSnapshots::default();
    assert!(snapshots.load().is_none());
    let publisher = SearchPublisher::new(snapshots.clone(), SearchState::of(products().to_vec()));
    let snapshot = snapshots.load().expect("published");
    assert_eq!((snapshot.version(), publisher.version()), (1, 1));
    assert_eq!(snapshot.state().len(), 300);
    let found = snapshot.state().search("lamp", 5).unwrap();
    assert!(!found.is_empty());
    for item in found {
        assert_eq!(
            item.entry.json().as_ref(),
            serde_json::to_vec(item.entry.product()).unwrap().as_slice()
        );
    }
}

#[test]
fn a_query_after_an_update_sees_it_and_a_held_snapshot_does_not() {
    let snapshots = SearchSnapshots::default();
    let mut publisher =
        SearchPublisher::new(snapshots.clone(), SearchState::of(products().to_vec()));
    let held = snapshots.load().unwrap();

    let changed = described(&products()[41], 2, "n1", "A zyzzyva for the garden.");
    assert_eq!(publisher.apply(vec![changed.clone()]), 1);

    let now = snapshots.load().unwrap();
    assert_eq!(now.version(), 2);
    let found = now.state().search("zyzzyva", 5).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].entry.product(), &changed);
    // The reader that loaded before keeps its whole version.
    assert!(held.state().search("zyzzyva", 5).unwrap().is_empty());
    assert_eq!(held.version(), 1);
    drop(held);

    // An older or equal version changes nothing and publishes nothing.
    let stale = described(&products()[41], 2, "n0", "An older zyzzyva.");
    assert_eq!(publisher.apply(vec![stale, changed]), 0);
    assert_eq!(snapshots.load().unwrap().version(), 2);
}

#[test]
fn changes_alternate_between_two_copies_once_readers_let_go() {
    let snapshots = SearchSnapshots::default();
    let mut publisher =
        SearchPublisher::new(snapshots.clone(), SearchState::of(products().to_vec()));
    for round in 0..6u64 {
        let product = described(&products()[5], round + 2, "n1", "a quiet zebra");
        assert_eq!(publisher.apply(vec![product]), 1);
    }
    // Only the first change copied the index; the others wrote the spare.
    assert_eq!(publisher.copies(), 1);
    assert_eq!(publisher.version(), 7);
    let now = snapshots.load().unwrap();
    let found = now.state().search("zebra", 5).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].entry.product().version, 7);
}

#[test]
fn a_reader_holding_the_spare_costs_a_copy_not_a_wrong_index() {
    let snapshots = SearchSnapshots::default();
    let mut publisher =
        SearchPublisher::new(snapshots.clone(), SearchState::of(products().to_vec()));
    let mut reference = SearchState::of(products().to_vec());
    let mut held = Vec::new();
    for (round, word) in ["alpha", "bravo", "charlie", "delta"].iter().enumerate() {
        // Hold every snapshot, so that no spare is ever free.
        held.push(snapshots.load().unwrap());
        let id = round % 3;
        let product = described(&products()[id], round as u64 + 2, "n1", word);
        reference.upsert(Arc::new(ProductEntry::new(product.clone())));
        assert_eq!(publisher.apply(vec![product]), 1);
        let now = snapshots.load().unwrap();
        for query in [*word, "lamp", "alpha bravo charlie delta"] {
            assert_eq!(results(now.state(), query), results(&reference, query));
        }
    }
    assert_eq!(held.len(), 4);
    assert_eq!(publisher.copies(), 4, "every change found its spare held");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever batches of versions arrive (newer, older, repeated), the
    /// published index answers every query exactly as one index updated in
    /// place would, and versions move forward by one per batch that changed
    /// something.
    #[test]
    fn alternating_copies_answer_like_one_index(
        batches in prop::collection::vec(
            prop::collection::vec((0usize..20, 2u64..6, 0usize..6), 1..5),
            1..12,
        )
    ) {
        const WORDS: [&str; 6] = ["oak", "lamp", "zebra", "garden", "steel", "quiet"];
        let snapshots = SearchSnapshots::default();
        let mut publisher =
            SearchPublisher::new(snapshots.clone(), SearchState::of(products().to_vec()));
        let mut reference = SearchState::of(products().to_vec());
        for batch in batches {
            let before = snapshots.load().unwrap().version();
            let versions: Vec<Product> = batch
                .iter()
                .map(|&(index, version, word)| {
                    let text = format!("{} {} desk", WORDS[word], WORDS[(word + version as usize) % 6]);
                    described(&products()[index], version, "n1", &text)
                })
                .collect();
            let expected = versions
                .iter()
                .filter(|product| reference.upsert(Arc::new(ProductEntry::new((*product).clone()))))
                .count();
            prop_assert_eq!(publisher.apply(versions), expected);
            let now = snapshots.load().unwrap();
            prop_assert_eq!(now.version(), before + u64::from(expected > 0));
            for query in WORDS.iter().chain(&["oak lamp", "garden steel quiet", "desk"]) {
                prop_assert_eq!(results(now.state(), query), results(&reference, query));
            }
        }
    }
}
