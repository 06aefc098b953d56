//! Catalog domain model: the product data every catalog replica holds.
//!
//! The catalog is replicated on every node. Its starting state is generated
//! deterministically ([`seed_products`], ChaCha8 from [`CATALOG_SEED`]), so
//! every node holds the same 10,000 products without a download. After the
//! seed, products change through versioned updates:
//!
//! - [`Catalog::apply_patch`] is an admin update made on one node: it
//!   validates the patch and produces the next version of the product,
//!   stamped with the node that made it;
//! - [`Catalog::merge`] takes a product version from another replica and
//!   keeps it iff it is newer (last-writer-wins on a total order).
//!
//! Invariants:
//! - the set of product ids is fixed at `1..=PRODUCT_COUNT` and stored
//!   densely (`products[i].id == i + 1`), so lookups are O(1);
//! - every stored product satisfies the field rules ([`MIN_PRICE_CENTS`],
//!   [`MAX_PRICE_CENTS`], [`MAX_DESCRIPTION_CHARS`], non-empty description);
//!   a merged version that breaks them is ignored;
//! - the stored version of a product only ever moves up in the precedence
//!   order `(version, updated_by, content)`. Because that order is total,
//!   replicas that have seen the same set of versions hold the same
//!   catalog, whatever the order and duplication of delivery. The content
//!   tie-break only matters when one node issued two different versions
//!   with the same number (e.g. it restarted from the seed before catching
//!   up); it keeps replicas convergent even then.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

mod seed;
#[cfg(test)]
mod tests;

use seed::generate;
pub use seed::seed_products;

/// Number of products in the seeded catalog (ids `1..=PRODUCT_COUNT`).
pub const PRODUCT_COUNT: u64 = 10_000;
/// Seed of the product generator; changing it changes every product.
pub const CATALOG_SEED: u64 = 0xBA2A_A12C_A7A1_0600;
/// Largest page [`Catalog::page`] returns.
pub const MAX_PAGE: usize = 100;
/// Lowest accepted price, in cents.
pub const MIN_PRICE_CENTS: u64 = 1;
/// Highest accepted price, in cents (one million euros).
pub const MAX_PRICE_CENTS: u64 = 100_000_000;
/// Longest accepted description, in characters (not bytes).
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Currency of every price.
pub const CURRENCY: &str = "EUR";
/// `updated_by` of seeded (version 1) products.
pub const SEED_ORIGIN: &str = "seed";

/// One product as served to shoppers and replicated between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stable id, `1..=PRODUCT_COUNT`.
    pub id: u64,
    /// Display name, e.g. "Sturdy Oak Desk Lamp".
    pub name: String,
    /// One to a few sentences of text.
    pub description: String,
    /// Display name of the category, e.g. "Lighting".
    pub category: String,
    /// Price in the smallest unit of `currency`.
    pub price_cents: u64,
    /// ISO 4217 code, always [`CURRENCY`].
    pub currency: String,
    /// Units in stock as advertised by the catalog (checkout owns reservations).
    pub stock: u32,
    /// 1 for seeded data; +1 on every accepted update.
    pub version: u64,
    /// Node that made this version; [`SEED_ORIGIN`] for generated data.
    pub updated_by: String,
}

/// An admin update: the fields to change, `None` meaning "keep".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductPatch {
    /// New price in cents.
    pub price_cents: Option<u64>,
    /// New stock level.
    pub stock: Option<u32>,
    /// New description.
    pub description: Option<String>,
}

impl ProductPatch {
    /// True when the patch changes no field.
    pub fn is_empty(&self) -> bool {
        self.price_cents.is_none() && self.stock.is_none() && self.description.is_none()
    }
}

/// Why a catalog operation was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogError {
    /// No product has this id.
    #[error("product {0} not found")]
    NotFound(u64),
    /// The patch sets no field.
    #[error("patch changes no field")]
    EmptyPatch,
    /// The price is outside `MIN_PRICE_CENTS..=MAX_PRICE_CENTS`.
    #[error(
        "price must be between {} and {} cents",
        MIN_PRICE_CENTS,
        MAX_PRICE_CENTS
    )]
    InvalidPrice,
    /// The description is empty or only whitespace.
    #[error("description must not be empty")]
    EmptyDescription,
    /// The description is longer than `max` characters.
    #[error("description is longer than {max} characters")]
    DescriptionTooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// The product already has the highest representable version.
    #[error("product {0} cannot take another version")]
    VersionOverflow(u64),
}

impl CatalogError {
    /// Whether retrying the same request may succeed; these errors are all
    /// about the request itself, so never.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// A catalog replica: all products, indexed by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// Dense by id: `products[i].id == i + 1`. Ids never change after the
    /// seed, so a `Vec` gives O(1) lookups and id-ordered pages for free.
    products: Vec<Product>,
}

impl Catalog {
    /// The catalog as generated from the seed, identical on every node.
    pub fn seeded() -> Self {
        Self::generated(PRODUCT_COUNT)
    }

    /// A catalog of the first `count` seeded products (small ones for tests).
    fn generated(count: u64) -> Self {
        let products = generate(count);
        debug_assert!(products.iter().zip(1..).all(|(p, id)| p.id == id));
        Self { products }
    }

    /// The product with this id.
    pub fn get(&self, id: u64) -> Option<&Product> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.products.get(index)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Product> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.products.get_mut(index)
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) products in id order, skipping `offset`.
    pub fn page(&self, offset: usize, limit: usize) -> Vec<Product> {
        let limit = limit.min(MAX_PAGE);
        self.products
            .iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Number of products.
    pub fn len(&self) -> usize {
        self.products.len()
    }

    /// True when the catalog holds no product.
    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// All products in id order.
    pub fn all(&self) -> impl Iterator<Item = &Product> {
        self.products.iter()
    }

    /// Applies an admin update made on node `origin`: version = current + 1.
    ///
    /// Validates the patch (not empty; price within bounds; description
    /// non-empty and at most [`MAX_DESCRIPTION_CHARS`]) before touching the
    /// product, and returns the new version to replicate.
    pub fn apply_patch(
        &mut self,
        id: u64,
        patch: &ProductPatch,
        origin: &str,
    ) -> Result<Product, CatalogError> {
        if patch.is_empty() {
            return Err(CatalogError::EmptyPatch);
        }
        if let Some(price) = patch.price_cents {
            validate_price(price)?;
        }
        if let Some(description) = &patch.description {
            validate_description(description)?;
        }
        let product = self.get_mut(id).ok_or(CatalogError::NotFound(id))?;
        let version = product
            .version
            .checked_add(1)
            .ok_or(CatalogError::VersionOverflow(id))?;

        if let Some(price) = patch.price_cents {
            product.price_cents = price;
        }
        if let Some(stock) = patch.stock {
            product.stock = stock;
        }
        if let Some(description) = &patch.description {
            product.description.clone_from(description);
        }
        product.version = version;
        product.updated_by = origin.to_owned();
        Ok(product.clone())
    }

    /// Merges a product version from another replica.
    ///
    /// It wins iff `(version, updated_by)` is greater than the current one
    /// (then the content decides, see the module doc). Returns true if the
    /// catalog changed. Unknown ids and versions that break the field rules
    /// are ignored (false).
    pub fn merge(&mut self, product: Product) -> bool {
        if validate_product(&product).is_err() {
            return false;
        }
        let Some(current) = self.get_mut(product.id) else {
            return false;
        };
        if precedence(&product, current) != Ordering::Greater {
            return false;
        }
        *current = product;
        true
    }

    /// Every product changed since the seed (version > 1), in id order: what
    /// a new replica needs to catch up.
    pub fn changes(&self) -> Vec<Product> {
        self.products
            .iter()
            .filter(|p| p.version > 1)
            .cloned()
            .collect()
    }
}

/// The total order replicas agree on: `(version, updated_by)`, then content.
fn precedence(a: &Product, b: &Product) -> Ordering {
    fn key(p: &Product) -> (u64, &str, u64, u32, &str, &str, &str, &str) {
        (
            p.version,
            p.updated_by.as_str(),
            p.price_cents,
            p.stock,
            p.description.as_str(),
            p.name.as_str(),
            p.category.as_str(),
            p.currency.as_str(),
        )
    }
    key(a).cmp(&key(b))
}

fn validate_price(price_cents: u64) -> Result<(), CatalogError> {
    if (MIN_PRICE_CENTS..=MAX_PRICE_CENTS).contains(&price_cents) {
        Ok(())
    } else {
        Err(CatalogError::InvalidPrice)
    }
}

fn validate_description(description: &str) -> Result<(), CatalogError> {
    if description.trim().is_empty() {
        return Err(CatalogError::EmptyDescription);
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(CatalogError::DescriptionTooLong {
            max: MAX_DESCRIPTION_CHARS,
        });
    }
    Ok(())
}

fn validate_product(product: &Product) -> Result<(), CatalogError> {
    validate_price(product.price_cents)?;
    validate_description(&product.description)
}
