//! Placement: which node runs what, as a pure function of the manifest and
//! the live members.
//!
//! `bazaar-cluster` never names a service: the [`Manifest`] is data handed
//! in by the layer above. Every node calls [`assign`] with the same manifest
//! and the same set of live members and gets the same [`Assignments`], so no
//! coordinator is needed; a reconciler on each node starts and stops its
//! local supervisors to match [`Assignments::roles_on`].
//!
//! Rules:
//! - the order of the members does not matter: they are sorted by name, and
//!   a name given twice keeps its highest incarnation;
//! - [`Placement::Replicated`]: every member is a [`Role::Replica`];
//! - [`Placement::Singleton`]: the owner is the oldest member (lowest
//!   incarnation, ties by name), the standby the next oldest; so when the
//!   owner leaves, the standby becomes the owner, and nothing else moves;
//! - [`Placement::Sharded`]: each shard goes to the members with the highest
//!   rendezvous weight ([`rendezvous_weight`] of shard and member name); the
//!   highest is the owner, the next `backups` are the backups. Removing a
//!   member only moves the shards it owned or backed up; adding one only
//!   moves shards to it;
//! - no members, nothing assigned.
//!
//! Quorum is not placement's concern: the reconciler must still refuse to
//! act as a singleton owner without a majority.
//!
//! Hashes are fixed and documented (FNV-1a 64 followed by the MurmurHash3
//! `fmix64` finalizer), never std's `DefaultHasher`, whose output may differ
//! between Rust versions and processes.

use serde::{Deserialize, Serialize};

use crate::member::MembershipView;

/// Most shards a sharded service may declare.
pub const MAX_SHARDS: u32 = 65_536;

/// How a service is spread over the live members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    /// A replica on every live node.
    Replicated,
    /// One owner and one standby.
    Singleton,
    /// Keys hashed into `shards` shards, each with an owner and `backups`
    /// backups (fewer when there are not enough members).
    Sharded {
        /// Number of shards, in `1..=MAX_SHARDS`.
        shards: u32,
        /// Backups per shard.
        backups: u32,
    },
}

/// A service and how it is placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Service name, unique in the manifest (`"cart"`).
    pub name: String,
    /// How it is spread over the members.
    pub placement: Placement,
}

/// The services of the cluster and their placements, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The services; names must be unique (see [`Manifest::validate`]).
    pub services: Vec<ServiceSpec>,
}

/// What is wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Two services share a name.
    #[error("duplicate service {0:?} in the manifest")]
    DuplicateService(String),
    /// A sharded service has no shards or more than [`MAX_SHARDS`].
    #[error("service {service:?} has {shards} shards, expected 1 to {MAX_SHARDS}")]
    BadShardCount {
        /// The service.
        service: String,
        /// Its declared shard count.
        shards: u32,
    },
}

impl ManifestError {
    /// Never: a manifest is configuration, retrying does not fix it.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

impl Manifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service replicated on every node.
    pub fn replicated(self, name: &str) -> Self {
        self.with(name, Placement::Replicated)
    }

    /// Adds a singleton service (one owner, one standby).
    pub fn singleton(self, name: &str) -> Self {
        self.with(name, Placement::Singleton)
    }

    /// Adds a sharded service.
    pub fn sharded(self, name: &str, shards: u32, backups: u32) -> Self {
        self.with(name, Placement::Sharded { shards, backups })
    }

    fn with(mut self, name: &str, placement: Placement) -> Self {
        self.services.push(ServiceSpec {
            name: name.to_owned(),
            placement,
        });
        self
    }

    /// Checks that names are unique and shard counts in range. [`assign`]
    /// accepts any manifest, but keeps only the first service of a name and
    /// places no shard of a service declaring zero.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut seen = std::collections::BTreeSet::new();
        for spec in &self.services {
            if !seen.insert(spec.name.as_str()) {
                return Err(ManifestError::DuplicateService(spec.name.clone()));
            }
            if let Placement::Sharded { shards, .. } = spec.placement {
                if !(1..=MAX_SHARDS).contains(&shards) {
                    return Err(ManifestError::BadShardCount {
                        service: spec.name.clone(),
                        shards,
                    });
                }
            }
        }
        Ok(())
    }
}

/// A live member that can host services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Node name.
    pub name: String,
    /// Start time of this life of the node in ms (lower = older).
    pub incarnation: u64,
}

/// The members of `view` that placement uses: every reachable one (up or
/// suspect; suspicion is not a verdict), whatever its order.
pub fn candidates(view: &MembershipView) -> Vec<Candidate> {
    view.members
        .values()
        .filter(|member| member.state.is_reachable())
        .map(|member| Candidate {
            name: member.info.name.clone(),
            incarnation: member.info.incarnation,
        })
        .collect()
}

/// What a node must run for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// One of the replicas of a replicated service.
    Replica,
    /// The active instance of a singleton.
    Owner,
    /// The standby of a singleton, ready to take over.
    Standby,
    /// The shards this node owns and the ones it backs up, ascending.
    Shards {
        /// Shards this node serves.
        owned: Vec<u32>,
        /// Shards this node keeps a backup of.
        backups: Vec<u32>,
    },
}

/// Who holds one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardAssignment {
    /// The shard number.
    pub shard: u32,
    /// The member serving it.
    pub owner: String,
    /// The members keeping a backup, in takeover order.
    pub backups: Vec<String>,
}

/// How one service is placed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placed {
    Replicated,
    Singleton {
        owner: String,
        standby: Option<String>,
    },
    Sharded(Vec<ShardAssignment>),
}

/// The result of [`assign`]: every service of the manifest placed on the
/// live members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignments {
    /// The members placed on, sorted by name, unique.
    members: Vec<Candidate>,
    /// In manifest order; empty when there were no members.
    services: Vec<(String, Placed)>,
}

/// Places every service of `manifest` on `members`, identically on every
/// node given the same inputs in any order.
pub fn assign(manifest: &Manifest, members: &[Candidate]) -> Assignments {
    let members = normalize(members);
    if members.is_empty() {
        return Assignments::default();
    }
    let mut services: Vec<(String, Placed)> = Vec::with_capacity(manifest.services.len());
    for spec in &manifest.services {
        if services.iter().any(|(name, _)| *name == spec.name) {
            continue;
        }
        let placed = match spec.placement {
            Placement::Replicated => Placed::Replicated,
            Placement::Singleton => place_singleton(&members),
            Placement::Sharded { shards, backups } => {
                Placed::Sharded(place_shards(&members, shards, backups))
            }
        };
        services.push((spec.name.clone(), placed));
    }
    Assignments { members, services }
}

/// Sorts by name and keeps, for a name given twice, its newest incarnation.
fn normalize(members: &[Candidate]) -> Vec<Candidate> {
    let mut sorted = members.to_vec();
    sorted.sort_by(|a, b| (&a.name, b.incarnation).cmp(&(&b.name, a.incarnation)));
    sorted.dedup_by(|later, first| later.name == first.name);
    sorted
}

fn place_singleton(members: &[Candidate]) -> Placed {
    let mut by_age: Vec<&Candidate> = members.iter().collect();
    by_age.sort_by(|a, b| (a.incarnation, &a.name).cmp(&(b.incarnation, &b.name)));
    Placed::Singleton {
        owner: by_age[0].name.clone(),
        standby: by_age.get(1).map(|member| member.name.clone()),
    }
}

fn place_shards(members: &[Candidate], shards: u32, backups: u32) -> Vec<ShardAssignment> {
    let shards = shards.min(MAX_SHARDS);
    let holders = (backups as usize).saturating_add(1).min(members.len());
    (0..shards)
        .map(|shard| {
            let mut ranked: Vec<(u64, &str)> = members
                .iter()
                .map(|member| (rendezvous_weight(shard, &member.name), member.name.as_str()))
                .collect();
            // Highest weight first; a (vanishingly rare) tie goes to the lower name.
            ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            let mut chosen = ranked[..holders].iter().map(|(_, name)| (*name).to_owned());
            let owner = chosen.next().unwrap_or_default();
            ShardAssignment {
                shard,
                owner,
                backups: chosen.collect(),
            }
        })
        .collect()
}

impl Assignments {
    /// What `node` must run: its role in each service, in manifest order.
    /// Services where it has nothing to do are left out.
    pub fn roles_on(&self, node: &str) -> Vec<(String, Role)> {
        if !self.members.iter().any(|member| member.name == node) {
            return Vec::new();
        }
        let mut roles = Vec::new();
        for (service, placed) in &self.services {
            let role = match placed {
                Placed::Replicated => Some(Role::Replica),
                Placed::Singleton { owner, standby } => {
                    if owner == node {
                        Some(Role::Owner)
                    } else if standby.as_deref() == Some(node) {
                        Some(Role::Standby)
                    } else {
                        None
                    }
                }
                Placed::Sharded(shards) => {
                    let owned: Vec<u32> = shards
                        .iter()
                        .filter(|assignment| assignment.owner == node)
                        .map(|assignment| assignment.shard)
                        .collect();
                    let backups: Vec<u32> = shards
                        .iter()
                        .filter(|assignment| assignment.backups.iter().any(|b| b == node))
                        .map(|assignment| assignment.shard)
                        .collect();
                    (!owned.is_empty() || !backups.is_empty())
                        .then_some(Role::Shards { owned, backups })
                }
            };
            if let Some(role) = role {
                roles.push((service.clone(), role));
            }
        }
        roles
    }

    /// The owner of a singleton service.
    pub fn owner(&self, service: &str) -> Option<&str> {
        match self.placed(service)? {
            Placed::Singleton { owner, .. } => Some(owner),
            _ => None,
        }
    }

    /// The standby of a singleton service, if there are two members or more.
    pub fn standby(&self, service: &str) -> Option<&str> {
        match self.placed(service)? {
            Placed::Singleton { standby, .. } => standby.as_deref(),
            _ => None,
        }
    }

    /// Owner and backups of every shard of a sharded service, by shard.
    pub fn shard_map(&self, service: &str) -> Vec<ShardAssignment> {
        match self.placed(service) {
            Some(Placed::Sharded(shards)) => shards.clone(),
            _ => Vec::new(),
        }
    }

    /// The members that were placed on: sorted by name, unique.
    pub fn members(&self) -> &[Candidate] {
        &self.members
    }

    /// The placed services, in manifest order.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|(name, _)| name.as_str())
    }

    /// The shard of `key` (a user id, say) among `shards`: a stable hash,
    /// the same in every process and version. Zero shards count as one.
    pub fn shard_of(key: &str, shards: u32) -> u32 {
        let hash = fmix64(fnv1a64(&[key.as_bytes()]));
        (hash % u64::from(shards.max(1))) as u32
    }

    fn placed(&self, service: &str) -> Option<&Placed> {
        self.services
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, placed)| placed)
    }
}

/// The rendezvous weight of `member` for `shard`: `fmix64(fnv1a64(shard as
/// 4 big-endian bytes ++ member name))`.
pub fn rendezvous_weight(shard: u32, member: &str) -> u64 {
    fmix64(fnv1a64(&[&shard.to_be_bytes(), member.as_bytes()]))
}

/// FNV-1a, 64 bits, over the concatenation of `parts`.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// MurmurHash3's 64-bit finalizer: spreads FNV's weak high-bit avalanche
/// over all bits, so that `%` and comparisons see well-mixed values.
fn fmix64(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    hash
}

#[cfg(test)]
mod tests;
