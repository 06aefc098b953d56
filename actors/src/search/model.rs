//! Search domain model: an inverted index over the catalog's products.
//!
//! Every node holds a replica, built from its catalog replica with
//! [`SearchIndex::build`] and kept current by [`SearchIndex::upsert`] as
//! product versions arrive. [`SearchIndex::search`] ranks products for a
//! free-text query.
//!
//! Text is cut into terms by [`tokenize`]: lowercase, split on anything that
//! is not alphanumeric, drop one-character tokens. Three fields are indexed
//! with weights: name 3, category 2, description 1.
//!
//! Ranking is BM25F: per field, term frequency is normalized by the field's
//! length relative to its average, weighted, and summed; the sum is saturated
//! (`k1`) and multiplied by the term's idf. A hit's score is
//! `matched + relevance / (relevance + RELEVANCE_SCALE)`: its integer part is
//! the number of distinct query terms the product contains, its fraction the
//! BM25F relevance squashed into `[0, 1)`. So a product matching more query
//! terms always ranks above one matching fewer, and BM25F orders the rest.
//!
//! Invariants:
//! - every product is indexed at most once (by id); an upsert replaces all
//!   of its previous postings, so no stale term finds it;
//! - each posting list is sorted by document slot, and holds only terms the
//!   document contains (a term whose list empties is forgotten and its id
//!   reused, so vocabulary does not grow with churn);
//! - results are ordered by score descending, then id ascending, and are
//!   deterministic: query terms are scored in sorted order.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::catalog::model::Product;

#[cfg(test)]
mod tests;

/// Longest accepted query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most hits one search returns, whatever the requested limit.
pub const MAX_RESULTS: usize = 100;
/// Most distinct terms in one query.
pub const MAX_QUERY_TERMS: usize = 10;
/// Hits returned when the caller does not ask for a number.
pub const DEFAULT_RESULTS: usize = 20;

/// Indexed fields, in the order of every per-field array below.
const FIELDS: usize = 3;
/// Field weights: name, category, description.
const FIELD_WEIGHTS: [f64; FIELDS] = [3.0, 2.0, 1.0];
/// BM25 term-frequency saturation.
const K1: f64 = 1.2;
/// BM25 length normalization (0 = none, 1 = full).
const B: f64 = 0.75;
/// Relevance at which the fractional part of a score reaches one half.
const RELEVANCE_SCALE: f64 = 10.0;

/// One ranked result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Product id.
    pub id: u64,
    /// Higher is better; the integer part counts matched query terms.
    pub score: f64,
}

/// Why a query was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SearchError {
    /// The query has no term of two or more characters.
    #[error("query has no searchable term")]
    EmptyQuery,
    /// The query is longer than `max` characters.
    #[error("query is longer than {max} characters")]
    QueryTooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// The query has more than `max` distinct terms.
    #[error("query has more than {max} distinct terms")]
    TooManyTerms {
        /// The limit, in distinct terms.
        max: usize,
    },
}

impl SearchError {
    /// Whether retrying the same query may succeed; these errors are all
    /// about the query itself, so never.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Cuts text into search terms: lowercase, split on non-alphanumeric
/// characters, drop tokens of one character.
pub fn tokenize(text: &str) -> Vec<String> {
    tokens(&text.to_lowercase()).map(str::to_owned).collect()
}

/// The terms of already lowercased text, borrowed from it.
fn tokens(lowercased: &str) -> impl Iterator<Item = &str> {
    lowercased
        .split(|c: char| !c.is_alphanumeric())
        .filter(|token| token.chars().nth(1).is_some())
}

/// Index of a term in the vocabulary.
type TermId = u32;
/// Index of a document (an indexed product) in `SearchIndex::docs`.
type Slot = u32;

/// One document containing one term.
#[derive(Debug, Clone, Copy)]
struct Posting {
    slot: Slot,
    /// Occurrences per field (saturating; a field is at most a few KiB).
    tf: [u16; FIELDS],
}

/// One term of the vocabulary with the documents that contain it.
#[derive(Debug, Clone, Default)]
struct Term {
    text: Box<str>,
    /// Sorted by slot; empty only while the term is on the free list.
    postings: Vec<Posting>,
}

/// One indexed product.
#[derive(Debug, Clone)]
struct Doc {
    id: u64,
    /// Tokens per field, for length normalization.
    lens: [u32; FIELDS],
    /// Distinct terms of the document, so an upsert can remove its postings.
    terms: Box<[TermId]>,
}

/// Inverted index over product name, category and description.
#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    /// Term text to id.
    vocabulary: HashMap<Box<str>, TermId>,
    /// By term id.
    terms: Vec<Term>,
    /// Term ids whose postings emptied, ready for reuse.
    free_terms: Vec<TermId>,
    /// By slot; slots are assigned in insertion order and never freed.
    docs: Vec<Doc>,
    /// Product id to slot.
    slots: HashMap<u64, Slot>,
    /// Sum of `Doc::lens` over all documents, per field.
    total_lens: [u64; FIELDS],
}

impl SearchIndex {
    /// Indexes the given products (a later duplicate id replaces an earlier one).
    pub fn build<'a>(products: impl IntoIterator<Item = &'a Product>) -> Self {
        let mut index = Self::default();
        for product in products {
            index.upsert(product);
        }
        for term in &mut index.terms {
            term.postings.shrink_to_fit();
        }
        index
    }

    /// Re-indexes one product (replaces its old postings, e.g. after a
    /// description change), or adds it if it is new.
    pub fn upsert(&mut self, product: &Product) {
        let slot = match self.slots.get(&product.id) {
            Some(&slot) => {
                self.remove_postings(slot);
                slot
            }
            None => {
                // Slots are u32 to keep postings small; a catalog of 2^32
                // products is out of scope, so refuse rather than wrap.
                let Ok(slot) = Slot::try_from(self.docs.len()) else {
                    return;
                };
                self.docs.push(Doc {
                    id: product.id,
                    lens: [0; FIELDS],
                    terms: Box::default(),
                });
                self.slots.insert(product.id, slot);
                slot
            }
        };

        let fields = [&product.name, &product.category, &product.description];
        let lowercased = fields.map(|text| text.to_lowercase());
        let mut counts: HashMap<&str, [u16; FIELDS]> = HashMap::new();
        let mut lens = [0u32; FIELDS];
        for (field, text) in lowercased.iter().enumerate() {
            for token in tokens(text) {
                lens[field] = lens[field].saturating_add(1);
                let tf = &mut counts.entry(token).or_default()[field];
                *tf = tf.saturating_add(1);
            }
        }

        let mut terms = Vec::with_capacity(counts.len());
        for (text, tf) in counts {
            let Some(term) = self.intern(text) else {
                continue;
            };
            let postings = &mut self.terms[term as usize].postings;
            let at = postings.partition_point(|p| p.slot < slot);
            postings.insert(at, Posting { slot, tf });
            terms.push(term);
        }
        for (total, len) in self.total_lens.iter_mut().zip(lens) {
            *total += u64::from(len);
        }
        let doc = &mut self.docs[slot as usize];
        doc.lens = lens;
        doc.terms = terms.into_boxed_slice();
    }

    /// Ranked hits, best first, at most `min(limit, MAX_RESULTS)`; ties
    /// broken by id ascending. See the module doc for the ranking.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        let terms = parse_query(query)?;
        let limit = limit.min(MAX_RESULTS);
        if limit == 0 {
            return Ok(Vec::new());
        }

        let doc_count = self.docs.len() as f64;
        let avg_lens = self
            .total_lens
            .map(|total| (total as f64 / doc_count).max(1.0));
        // Per slot: (distinct query terms matched, BM25F relevance).
        let mut matches: HashMap<Slot, (u32, f64)> = HashMap::new();
        for text in &terms {
            let Some(&term) = self.vocabulary.get(text.as_str()) else {
                continue;
            };
            let postings = &self.terms[term as usize].postings;
            let df = postings.len() as f64;
            let idf = (1.0 + (doc_count - df + 0.5) / (df + 0.5)).ln();
            for posting in postings {
                let lens = &self.docs[posting.slot as usize].lens;
                let weighted_tf: f64 = (0..FIELDS)
                    .map(|f| {
                        let norm = 1.0 - B + B * f64::from(lens[f]) / avg_lens[f];
                        FIELD_WEIGHTS[f] * f64::from(posting.tf[f]) / norm
                    })
                    .sum();
                let relevance = idf * weighted_tf * (K1 + 1.0) / (weighted_tf + K1);
                let entry = matches.entry(posting.slot).or_insert((0, 0.0));
                entry.0 += 1;
                entry.1 += relevance;
            }
        }

        let mut hits: Vec<SearchHit> = matches
            .into_iter()
            .map(|(slot, (matched, relevance))| SearchHit {
                id: self.docs[slot as usize].id,
                score: f64::from(matched) + relevance / (relevance + RELEVANCE_SCALE),
            })
            .collect();
        if hits.len() > limit {
            hits.select_nth_unstable_by(limit - 1, rank);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(rank);
        Ok(hits)
    }

    /// Number of indexed products.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when no product is indexed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Approximate heap memory held by the index, in bytes (for metrics).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let terms: usize = self
            .terms
            .iter()
            .map(|t| {
                size_of::<Term>() + t.text.len() + t.postings.capacity() * size_of::<Posting>()
            })
            .sum();
        let vocabulary = self.vocabulary.capacity() * (size_of::<(Box<str>, TermId)>() + 1)
            + self.vocabulary.keys().map(|k| k.len()).sum::<usize>();
        let docs: usize = self.docs.capacity() * size_of::<Doc>()
            + self
                .docs
                .iter()
                .map(|d| d.terms.len() * size_of::<TermId>())
                .sum::<usize>();
        let slots = self.slots.capacity() * (size_of::<(u64, Slot)>() + 1);
        terms + vocabulary + docs + slots + self.free_terms.capacity() * size_of::<TermId>()
    }

    /// The id of `text`, adding it to the vocabulary if needed (`None`
    /// only once 2^32 distinct terms are live).
    fn intern(&mut self, text: &str) -> Option<TermId> {
        if let Some(&term) = self.vocabulary.get(text) {
            return Some(term);
        }
        let text: Box<str> = text.into();
        let term = match self.free_terms.pop() {
            Some(term) => {
                self.terms[term as usize].text = text.clone();
                term
            }
            None => {
                let term = TermId::try_from(self.terms.len()).ok()?;
                self.terms.push(Term {
                    text: text.clone(),
                    postings: Vec::new(),
                });
                term
            }
        };
        self.vocabulary.insert(text, term);
        Some(term)
    }

    /// Removes every posting of the document in `slot`, forgetting terms
    /// that no document contains any more.
    fn remove_postings(&mut self, slot: Slot) {
        let doc = &mut self.docs[slot as usize];
        for (total, len) in self.total_lens.iter_mut().zip(doc.lens) {
            *total -= u64::from(len);
        }
        doc.lens = [0; FIELDS];
        for term in std::mem::take(&mut doc.terms).iter().copied() {
            let entry = &mut self.terms[term as usize];
            if let Ok(at) = entry.postings.binary_search_by_key(&slot, |p| p.slot) {
                entry.postings.remove(at);
            }
            debug_assert!(entry.postings.iter().all(|p| p.slot != slot));
            if entry.postings.is_empty() {
                self.vocabulary.remove(&entry.text);
                entry.text = Box::default();
                entry.postings = Vec::new();
                self.free_terms.push(term);
            }
        }
    }
}

/// Validates a query and returns its distinct terms, sorted.
fn parse_query(query: &str) -> Result<Vec<String>, SearchError> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(SearchError::QueryTooLong {
            max: MAX_QUERY_CHARS,
        });
    }
    let mut terms = tokenize(query);
    terms.sort_unstable();
    terms.dedup();
    if terms.is_empty() {
        return Err(SearchError::EmptyQuery);
    }
    if terms.len() > MAX_QUERY_TERMS {
        return Err(SearchError::TooManyTerms {
            max: MAX_QUERY_TERMS,
        });
    }
    Ok(terms)
}

/// Result order: score descending, then id ascending.
fn rank(a: &SearchHit, b: &SearchHit) -> std::cmp::Ordering {
    b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
}
