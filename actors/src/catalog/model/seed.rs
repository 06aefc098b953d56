//! The seeded products: generated from [`CATALOG_SEED`] with word lists,
//! identical on every node and in every test, with no download.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Product, CATALOG_SEED, CURRENCY, PRODUCT_COUNT, SEED_ORIGIN};

/// The seeded products, ids `1..=PRODUCT_COUNT`, version 1, identical on every node.
pub fn seed_products() -> Vec<Product> {
    generate(PRODUCT_COUNT)
}

/// Generates the first `count` seeded products. Each product is drawn in
/// turn from one generator, so `generate(n)` is a prefix of `generate(m)`
/// for `n <= m`. Names are unique: a drawn name already used is redrawn.
pub(super) fn generate(count: u64) -> Vec<Product> {
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
