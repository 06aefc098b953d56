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
use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

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

/// The seeded products, ids `1..=PRODUCT_COUNT`, version 1, identical on every node.
pub fn seed_products() -> Vec<Product> {
    generate(PRODUCT_COUNT)
}

/// Generates the first `count` seeded products. Each product is drawn in
/// turn from one generator, so `generate(n)` is a prefix of `generate(m)`
/// for `n <= m`. Names are unique: a drawn name already used is redrawn.
fn generate(count: u64) -> Vec<Product> {
    let mut rng = ChaCha8Rng::seed_from_u64(CATALOG_SEED);
    let mut names = HashSet::new();
    let mut products = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for id in 1..=count {
        let (category, adjective, modifier, item) = loop {
            let category = pick(&mut rng, CATEGORIES);
            let adjective = pick(&mut rng, ADJECTIVES);
            let modifier = pick(&mut rng, category.modifiers);
            let item = pick(&mut rng, category.items);
            if names.insert(format!("{adjective} {modifier} {item}")) {
                break (category, adjective, modifier, item);
            }
        };
        products.push(Product {
            id,
            name: format!("{adjective} {modifier} {item}"),
            description: describe(&mut rng, category.name, adjective, item),
            category: category.name.to_owned(),
            // 1.99 .. 999.99 EUR, always ending in .99.
            price_cents: u64::from(rng.random_range(1..=999u32)) * 100 + 99,
            currency: CURRENCY.to_owned(),
            stock: rng.random_range(0..=500),
            version: 1,
            updated_by: SEED_ORIGIN.to_owned(),
        });
    }
    products
}

/// One to three sentences; the first always names the item.
fn describe(rng: &mut ChaCha8Rng, category: &str, adjective: &str, item: &str) -> String {
    let adjective = adjective.to_lowercase();
    let article = if adjective.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "An"
    } else {
        "A"
    };
    let mut sentences = vec![format!(
        "{article} {adjective} {} for {}.",
        item.to_lowercase(),
        pick(rng, USES)
    )];
    let extra = rng.random_range(0..=2u32);
    // Draw distinct templates so no sentence kind repeats.
    let mut templates: Vec<u32> = (0..5).collect();
    for _ in 0..extra {
        let index = rng.random_range(0..u32::try_from(templates.len()).unwrap_or(1));
        let sentence = match templates.remove(index as usize) {
            0 => format!("Designed with {} in mind.", pick(rng, FEATURES)),
            1 => {
                let (first, second) = pick_two(rng, FEATURES);
                format!("Comes with {first} and {second}.")
            }
            2 => format!("Popular with customers who value {}.", pick(rng, VALUES)),
            3 => format!("Ships within {} business days.", rng.random_range(1..=5u32)),
            _ => format!(
                "Pairs well with the rest of our {} range.",
                category.to_lowercase()
            ),
        };
        sentences.push(sentence);
    }
    sentences.join(" ")
}

/// A uniformly chosen element. Indexes through `u32` so the draw is the same
/// on 32- and 64-bit targets.
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    debug_assert!(!items.is_empty() && u32::try_from(items.len()).is_ok());
    let len = u32::try_from(items.len()).unwrap_or(u32::MAX);
    &items[rng.random_range(0..len) as usize]
}

/// Two distinct, uniformly chosen elements (`items` has at least two).
fn pick_two<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> (&'a T, &'a T) {
    debug_assert!(items.len() >= 2 && u32::try_from(items.len()).is_ok());
    let len = u32::try_from(items.len()).unwrap_or(u32::MAX);
    let first = rng.random_range(0..len);
    let mut second = rng.random_range(0..len - 1);
    if second >= first {
        second += 1;
    }
    (&items[first as usize], &items[second as usize])
}

/// Word lists of one category: names are `{adjective} {modifier} {item}`.
struct CategoryWords {
    name: &'static str,
    modifiers: &'static [&'static str],
    items: &'static [&'static str],
}

#[rustfmt::skip]
const ADJECTIVES: &[&str] = &[
    "Sturdy", "Classic", "Compact", "Elegant", "Rustic", "Modern", "Vintage", "Cozy", "Sleek",
    "Handmade", "Premium", "Everyday", "Deluxe", "Minimal", "Bold", "Gentle", "Rugged", "Smart",
    "Portable", "Essential", "Nordic", "Urban", "Timeless", "Bright", "Quiet", "Lightweight",
    "Durable", "Refined", "Playful", "Heritage",
];

#[rustfmt::skip]
const CATEGORIES: &[CategoryWords] = &[
    CategoryWords { name: "Lighting",
        modifiers: &["Oak", "Brass", "Glass", "Ceramic", "Walnut", "Steel", "Linen", "Copper"],
        items: &["Desk Lamp", "Floor Lamp", "Pendant Light", "Table Lamp", "Wall Sconce",
            "Lantern", "String Lights", "Reading Light"] },
    CategoryWords { name: "Furniture",
        modifiers: &["Oak", "Walnut", "Pine", "Bamboo", "Teak", "Steel", "Rattan", "Birch"],
        items: &["Bookshelf", "Coffee Table", "Armchair", "Side Table", "Bench", "Stool",
            "Dresser", "Writing Desk"] },
    CategoryWords { name: "Kitchen",
        modifiers: &["Cast Iron", "Stainless", "Ceramic", "Bamboo", "Copper", "Enamel",
            "Stoneware", "Acacia"],
        items: &["Frying Pan", "Saucepan", "Cutting Board", "Mixing Bowl", "Teapot", "Knife Set",
            "Dutch Oven", "Colander"] },
    CategoryWords { name: "Tableware",
        modifiers: &["Porcelain", "Stoneware", "Glass", "Crystal", "Ceramic", "Enamel",
            "Olive Wood", "Terracotta"],
        items: &["Dinner Plate", "Mug", "Serving Bowl", "Wine Glass", "Pitcher", "Salad Bowl",
            "Espresso Cup", "Platter"] },
    CategoryWords { name: "Bedding",
        modifiers: &["Cotton", "Linen", "Wool", "Flannel", "Bamboo", "Silk", "Percale", "Down"],
        items: &["Duvet Cover", "Pillowcase", "Throw Blanket", "Fitted Sheet", "Quilt", "Pillow",
            "Comforter", "Bedspread"] },
    CategoryWords { name: "Outdoor",
        modifiers: &["Canvas", "Aluminum", "Teak", "Nylon", "Cedar", "Waterproof", "Folding",
            "Solar"],
        items: &["Camping Chair", "Hammock", "Tent", "Picnic Blanket", "Cooler", "Planter",
            "Garden Bench", "Parasol"] },
    CategoryWords { name: "Sports",
        modifiers: &["Carbon", "Foam", "Rubber", "Mesh", "Neoprene", "Leather", "Steel", "Cork"],
        items: &["Yoga Mat", "Dumbbell", "Jump Rope", "Water Bottle", "Gym Bag", "Tennis Racket",
            "Resistance Band", "Foam Roller"] },
    CategoryWords { name: "Electronics",
        modifiers: &["Wireless", "Bluetooth", "Aluminum", "Noise-Cancelling", "USB-C", "Solar",
            "Waterproof", "Magnetic"],
        items: &["Headphones", "Speaker", "Charger", "Power Bank", "Keyboard", "Mouse", "Webcam",
            "Earbuds"] },
    CategoryWords { name: "Office",
        modifiers: &["Leather", "Recycled", "Bamboo", "Steel", "Felt", "Cork", "Acrylic",
            "Walnut"],
        items: &["Notebook", "Desk Organizer", "Pen Holder", "Monitor Stand", "File Box",
            "Planner", "Desk Mat", "Letter Tray"] },
    CategoryWords { name: "Bath",
        modifiers: &["Cotton", "Bamboo", "Terry", "Marble", "Ceramic", "Waffle", "Teak", "Linen"],
        items: &["Bath Towel", "Bath Mat", "Soap Dish", "Shower Curtain", "Bathrobe",
            "Toothbrush Holder", "Hand Towel", "Laundry Basket"] },
    CategoryWords { name: "Toys",
        modifiers: &["Wooden", "Plush", "Felt", "Magnetic", "Rainbow", "Musical", "Stacking",
            "Painted"],
        items: &["Building Blocks", "Teddy Bear", "Train Set", "Puzzle Box", "Rocking Horse",
            "Doll House", "Spinning Top", "Xylophone"] },
    CategoryWords { name: "Garden",
        modifiers: &["Terracotta", "Galvanized", "Ash", "Stainless", "Willow", "Ceramic", "Copper",
            "Recycled"],
        items: &["Flower Pot", "Watering Can", "Pruning Shears", "Trowel", "Bird Feeder",
            "Raised Bed", "Garden Hose", "Compost Bin"] },
    CategoryWords { name: "Apparel",
        modifiers: &["Merino", "Denim", "Cotton", "Cashmere", "Fleece", "Linen", "Corduroy",
            "Organic"],
        items: &["Sweater", "Scarf", "Beanie", "Jacket", "Shirt", "Hoodie", "Socks", "Gloves"] },
    CategoryWords { name: "Bags",
        modifiers: &["Leather", "Canvas", "Nylon", "Waxed", "Suede", "Jute", "Recycled", "Cotton"],
        items: &["Backpack", "Tote Bag", "Duffel Bag", "Messenger Bag", "Wallet", "Crossbody Bag",
            "Laptop Sleeve", "Weekender"] },
    CategoryWords { name: "Home Decor",
        modifiers: &["Ceramic", "Brass", "Rattan", "Velvet", "Marble", "Jute", "Glass", "Macrame"],
        items: &["Vase", "Wall Mirror", "Picture Frame", "Candle Holder", "Cushion", "Wall Clock",
            "Rug", "Wall Hanging"] },
];

#[rustfmt::skip]
const USES: &[&str] = &[
    "everyday use", "small spaces", "busy mornings", "quiet evenings", "weekend projects",
    "the whole family", "gifting", "travel",
];

#[rustfmt::skip]
const FEATURES: &[&str] = &[
    "a compact footprint", "easy cleaning", "a two-year warranty", "quiet operation",
    "recycled packaging", "a timeless design", "soft-touch finishes", "tool-free assembly",
    "reinforced seams", "replaceable parts",
];

#[rustfmt::skip]
const VALUES: &[&str] = &[
    "durability", "simplicity", "craftsmanship", "comfort", "sustainability", "a fair price",
];
