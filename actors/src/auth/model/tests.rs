use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use proptest::prelude::*;

use super::*;

/// One real argon2 hash of [`DEMO_PASSWORD`], shared by every test: hashing
/// is slow on purpose.
fn demo_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(DEMO_PASSWORD).unwrap())
        .clone()
}

/// A well-formed argon2id PHC string that no password matches, distinct
/// for each `n`: parsing it costs nothing.
fn fake_hash(n: u8) -> String {
    let salt = STANDARD_NO_PAD.encode([n; 16]);
    let output = STANDARD_NO_PAD.encode([n.wrapping_add(1); 32]);
    format!("$argon2id$v=19$m=19456,t=2,p=1${salt}${output}")
}

fn seeded() -> Accounts {
    Accounts::demo(fake_hash(0), Some(fake_hash(1)))
}

fn account(username: &str, hash: u8, created_ms: u64, origin: &str) -> Account {
    Account {
        username: username.to_owned(),
        password_hash: fake_hash(hash),
        role: Role::User,
        created_ms,
        origin: origin.to_owned(),
    }
}

const NOW_MS: u64 = 1_700_000_000_000;

#[test]
fn password_hash_round_trip() {
    let hash = demo_hash();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(verify_password(DEMO_PASSWORD, &hash));
    assert!(!verify_password("bazaar!", &hash));
    assert!(!verify_password(DEMO_PASSWORD, &fake_hash(3)));
}

#[test]
fn malformed_or_costly_hashes_never_verify() {
    let costly = "$argon2id$v=19$m=4000000,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$\
                  AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
    assert!(parse_hash(&costly.replace("m=4000000", "m=19456")).is_some());
    let argon2i = fake_hash(2).replace("argon2id", "argon2i");
    for hash in [
        "",
        "bazaar",
        "$argon2id$",
        "$argon2id$v=19$m=19456,t=2,p=1$",
        costly,
        &argon2i,
    ] {
        assert!(!verify_password(DEMO_PASSWORD, hash), "{hash}");
    }
    assert!(!verify_password(&"x".repeat(10_000), &fake_hash(2)));
    let too_long = hash_password(&"x".repeat(MAX_PASSWORD_BYTES + 1));
    assert_eq!(too_long, Err(AuthError::InvalidPassword));
}

#[test]
fn demo_accounts() {
    let accounts = Accounts::demo(demo_hash(), None);
    assert_eq!(accounts.len(), DEMO_USERS);
    assert!(accounts.get(ADMIN_USERNAME).is_none());
    let first = accounts.get("user001").unwrap();
    assert_eq!(
        (first.role, first.created_ms, first.is_seeded()),
        (Role::User, 0, true)
    );
    assert!(accounts.get("user100").is_some());
    assert!(accounts.get("user101").is_none());
    assert!(accounts.changes().is_empty());

    let with_admin = seeded();
    assert_eq!(with_admin.len(), DEMO_USERS + 1);
    assert_eq!(with_admin.get(ADMIN_USERNAME).unwrap().role, Role::Admin);
}

#[test]
fn sign_up_validation() {
    let ok = Accounts::validate_sign_up;
    assert_eq!(ok("abc", "secret"), Ok(()));
    assert_eq!(ok("a_9", &"é".repeat(128)), Ok(()));
    assert_eq!(ok(&"a".repeat(32), "secret"), Ok(()));
    for username in ["ab", "", "Abc", "ab-c", "ab c", "abé", &"a".repeat(33)] {
        assert_eq!(
            ok(username, "secret"),
            Err(AuthError::InvalidUsername),
            "{username}"
        );
    }
    for password in ["", "12345", &"p".repeat(129)] {
        assert_eq!(ok("alice", password), Err(AuthError::InvalidPassword));
    }
    assert!(!AuthError::InvalidUsername.is_retryable());
    assert_eq!(
        AuthError::UsernameTaken("bob".into()).to_string(),
        "username \"bob\" is taken"
    );
}

#[test]
fn sign_up_creates_a_user_once() {
    let mut accounts = seeded();
    let created = accounts
        .sign_up("alice", fake_hash(5), "n2", NOW_MS)
        .unwrap();
    assert_eq!(created, account("alice", 5, NOW_MS, "n2"));
    assert_eq!(accounts.get("alice"), Some(&created));
    assert_eq!(accounts.changes(), vec![created]);

    let taken = accounts.sign_up("alice", fake_hash(6), "n1", NOW_MS + 1);
    assert_eq!(taken, Err(AuthError::UsernameTaken("alice".into())));
    let seeded_taken = accounts.sign_up("user007", fake_hash(6), "n1", NOW_MS);
    assert_eq!(
        seeded_taken,
        Err(AuthError::UsernameTaken("user007".into()))
    );
    let bad_name = accounts.sign_up("Alice", fake_hash(6), "n1", NOW_MS);
    assert_eq!(bad_name, Err(AuthError::InvalidUsername));
    let bad_hash = accounts.sign_up("carol", "plaintext".into(), "n1", NOW_MS);
    assert_eq!(bad_hash, Err(AuthError::InvalidHash));
    assert_eq!(accounts.len(), DEMO_USERS + 2);
}

#[test]
fn merge_picks_the_earliest_creation() {
    let mut accounts = seeded();
    assert!(accounts.merge(account("alice", 2, 20, "n2")));
    assert!(!accounts.merge(account("alice", 2, 20, "n2")), "idempotent");
    assert!(
        !accounts.merge(account("alice", 3, 30, "n1")),
        "later loses"
    );
    assert!(
        accounts.merge(account("alice", 4, 20, "n1")),
        "same time, lower origin"
    );
    assert_eq!(accounts.get("alice").unwrap().origin, "n1");
}

#[test]
fn merge_ignores_seeded_admin_and_invalid_accounts() {
    let mut accounts = seeded();
    let before = accounts.clone();
    let mut admin = account("mallory", 2, 1, "n1");
    admin.role = Role::Admin;
    let mut seed = account("mallory", 2, 0, SEED_ORIGIN);
    seed.origin = SEED_ORIGIN.into();
    let mut bad_hash = account("mallory", 2, 1, "n1");
    bad_hash.password_hash = "x".into();
    for rejected in [
        admin,
        seed,
        bad_hash,
        account("Mallory", 2, 1, "n1"),
        account("user001", 2, 0, "a"), // would beat the seed's (0, "seed")
    ] {
        assert!(!accounts.merge(rejected.clone()), "{rejected:?}");
    }
    assert_eq!(accounts, before);
}

#[test]
fn token_round_trip() {
    let key = TokenKey::derive("0123456789abcdef");
    let token = issue_token(&key, "user042", Role::User, NOW_MS);
    assert!(!token.contains('='), "no padding: {token}");
    let claims = verify_token(&key, &token, NOW_MS + 1).unwrap();
    let expected = Claims {
        sub: "user042".into(),
        role: Role::User,
        iat_ms: NOW_MS,
        exp_ms: NOW_MS + TOKEN_TTL_MS,
    };
    assert_eq!(claims, expected);
    // Another node derives the same key from the same cookie.
    let elsewhere = TokenKey::derive("0123456789abcdef");
    assert_eq!(verify_token(&elsewhere, &token, NOW_MS), Ok(expected));
}

#[test]
fn token_expiry() {
    let key = TokenKey::derive("cookie");
    let token = issue_token(&key, "admin", Role::Admin, NOW_MS);
    assert!(verify_token(&key, &token, NOW_MS + TOKEN_TTL_MS - 1).is_ok());
    assert_eq!(
        verify_token(&key, &token, NOW_MS + TOKEN_TTL_MS),
        Err(TokenError::Expired)
    );
    assert_eq!(
        verify_token(&key, &token, u64::MAX),
        Err(TokenError::Expired)
    );
}

#[test]
fn tampered_tokens_have_a_bad_signature() {
    let key = TokenKey::derive("cookie");
    let token = issue_token(&key, "user001", Role::User, NOW_MS);
    let (payload, signature) = token.split_once('.').unwrap();

    // A forged payload with the original signature.
    let forged = Claims {
        sub: "user001".into(),
        role: Role::Admin,
        iat_ms: NOW_MS,
        exp_ms: NOW_MS + TOKEN_TTL_MS,
    };
    let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let bad = |token: &str| verify_token(&key, token, NOW_MS);
    assert_eq!(
        bad(&format!("{forged}.{signature}")),
        Err(TokenError::BadSignature)
    );

    // One bit of the signature flipped.
    let mut raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
    raw[0] ^= 1;
    let flipped = URL_SAFE_NO_PAD.encode(raw);
    assert_eq!(
        bad(&format!("{payload}.{flipped}")),
        Err(TokenError::BadSignature)
    );
    assert_eq!(bad(&format!("{payload}.")), Err(TokenError::BadSignature));
    assert_eq!(bad(&format!("{payload}.!!")), Err(TokenError::BadSignature));

    // Signed by another cluster.
    let other = issue_token(
        &TokenKey::derive("another cookie"),
        "user001",
        Role::User,
        NOW_MS,
    );
    assert_eq!(bad(&other), Err(TokenError::BadSignature));
}

#[test]
fn malformed_tokens() {
    let key = TokenKey::derive("cookie");
    for token in ["", ".", "abc", ".abc", "a.b.c"] {
        assert_eq!(
            verify_token(&key, token, NOW_MS),
            Err(TokenError::Malformed),
            "{token}"
        );
    }
    // Validly signed, but too long to look at.
    let long = issue_token(&key, &"u".repeat(MAX_TOKEN_LEN), Role::User, NOW_MS);
    assert_eq!(
        verify_token(&key, &long, NOW_MS),
        Err(TokenError::Malformed)
    );
    // Validly signed, but not claims.
    let payload = URL_SAFE_NO_PAD.encode(b"{\"sub\":1}");
    let mut mac = key.mac();
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let token = format!("{payload}.{signature}");
    assert_eq!(
        verify_token(&key, &token, NOW_MS),
        Err(TokenError::Malformed)
    );
}

#[test]
fn token_key_is_derived_and_hidden() {
    let cookie = "0123456789abcdef0123456789abcdef";
    let key = TokenKey::derive(cookie);
    assert_ne!(&key.0[..], cookie.as_bytes());
    assert_ne!(
        key.0,
        TokenKey::derive("0123456789abcdef0123456789abcdeF").0
    );
    assert_eq!(format!("{key:?}"), "TokenKey(..)");
}

/// Accounts competing for a few usernames from a few nodes, to force
/// conflicts; invalid ones mixed in.
fn replicated_account() -> impl Strategy<Value = Account> {
    (
        prop::sample::select(vec!["alice", "bob", "carol", "user001", "Bad!"]),
        0u8..3,
        1u64..4,
        prop::sample::select(vec!["n1", "n2", "n3"]),
    )
        .prop_map(|(username, hash, created_ms, origin)| {
            account(username, hash, created_ms, origin)
        })
}

proptest! {
    #[test]
    fn garbage_tokens_never_verify_nor_panic(token in ".{0,1100}", now in any::<u64>()) {
        let key = TokenKey::derive("cookie");
        prop_assert!(verify_token(&key, &token, now).is_err());
    }

    #[test]
    fn token_shaped_garbage_never_verifies(
        token in "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,50}",
    ) {
        let key = TokenKey::derive("cookie");
        prop_assert!(verify_token(&key, &token, 0).is_err());
    }

    #[test]
    fn any_changed_character_breaks_a_token(index in any::<prop::sample::Index>(), c in any::<char>()) {
        let key = TokenKey::derive("cookie");
        let token = issue_token(&key, "user001", Role::User, NOW_MS);
        let mut chars: Vec<char> = token.chars().collect();
        let at = index.index(chars.len());
        prop_assume!(chars[at] != c);
        chars[at] = c;
        let tampered: String = chars.into_iter().collect();
        prop_assert!(verify_token(&key, &tampered, NOW_MS).is_err());
    }

    #[test]
    fn merge_converges_in_any_order(
        accounts in prop::collection::vec(replicated_account(), 0..12)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
    ) {
        let (in_order, shuffled) = accounts;
        let mut left = seeded();
        for account in &in_order {
            left.merge(account.clone());
        }
        let mut right = seeded();
        for account in shuffled.iter().rev() {
            right.merge(account.clone());
        }
        prop_assert_eq!(&left, &right);

        // Idempotent: merging everything again changes nothing.
        for account in in_order.iter().chain(&left.changes()) {
            prop_assert!(!left.merge(account.clone()));
        }
        prop_assert_eq!(&left, &right);

        // The winner of each username is its lowest (created_ms, origin).
        for account in left.changes() {
            let best = in_order
                .iter()
                .filter(|a| a.username == account.username)
                .min_by(|a, b| a.precedence().cmp(&b.precedence()))
                .unwrap();
            prop_assert_eq!(&account, best);
        }
        // A new replica catches up from the changes alone.
        let mut fresh = seeded();
        for account in left.changes() {
            fresh.merge(account);
        }
        prop_assert_eq!(&fresh, &left);
    }
}
