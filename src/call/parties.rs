//! Who is local, the call's direction, and the parties' numbers and names.

use super::dialog::{Dialog, Role};
use super::settings::InternalCalls;
use crate::config::Config;

/// The direction code of the recording API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// 0: neither or both parties are local.
    Unknown = 0,
    /// 1: the remote party called the local party.
    Incoming = 1,
    /// 2: the local party called the remote party.
    Outgoing = 2,
}

/// Which party is local, and the resulting direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    /// The party recorded on the left channel.
    pub local: Role,
    /// Direction for the metadata.
    pub direction: Direction,
}

/// Decides the local party: the endpoint inside the configured local
/// networks, by signalling address first and media address when signalling
/// cannot tell (both or neither inside). Undecidable: the caller is local
/// (left) and the direction unknown.
pub fn sides(dialog: &Dialog, config: &Config) -> Sides {
    let by_signalling = |role: Role| {
        dialog
            .party(role)
            .signalling
            .is_some_and(|ip| config.is_local(ip))
    };
    let by_media = |role: Role| {
        dialog
            .party(role)
            .media
            .as_ref()
            .and_then(|m| m.addr)
            .is_some_and(|a| config.is_local(a.ip()))
    };
    for locality in [&by_signalling as &dyn Fn(Role) -> bool, &by_media] {
        match (locality(Role::Caller), locality(Role::Callee)) {
            (true, false) => {
                return Sides {
                    local: Role::Caller,
                    direction: Direction::Outgoing,
                }
            }
            (false, true) => {
                return Sides {
                    local: Role::Callee,
                    direction: Direction::Incoming,
                }
            }
            _ => {}
        }
    }
    if both_local(dialog, config) && config.numbers.internal_calls == InternalCalls::Outgoing {
        return Sides {
            local: Role::Caller,
            direction: Direction::Outgoing,
        };
    }
    Sides {
        local: Role::Caller,
        direction: Direction::Unknown,
    }
}

/// True when both parties' signalling addresses are in the local networks
/// (an internal call).
pub fn both_local(dialog: &Dialog, config: &Config) -> bool {
    [Role::Caller, Role::Callee].iter().all(|&role| {
        dialog
            .party(role)
            .signalling
            .is_some_and(|ip| config.is_local(ip))
    })
}

/// The phone number reported for a party: the asserted or URI user part,
/// "anonymous" when the signalling hides it.
pub fn phone_number(dialog: &Dialog, role: Role, config: &Config) -> String {
    dialog
        .party(role)
        .number
        .as_deref()
        .filter(|n| !n.is_empty())
        .map_or_else(|| "anonymous".to_string(), |n| config.numbers.normalize(n))
}

/// The username reported for the local party: the configured `[users]`
/// entry for its number, else its SIP display name, else its number.
pub fn username(dialog: &Dialog, role: Role, config: &Config) -> String {
    let number = phone_number(dialog, role, config);
    if let Some(user) = config.users.get(&number) {
        return user.clone();
    }
    dialog.party(role).display_name.clone().unwrap_or(number)
}
