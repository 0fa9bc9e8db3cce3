//! Call control's side of the carriers: their registrations (the first shard's), the lookups
//! and connection failures that come back for calls and trunks, and knowing a carrier's calls
//! by their source address.

use std::net::{IpAddr, SocketAddr};

use sambung_sip::transaction::TxKey;
use sambung_sip::{Response, Transport};
use tracing::debug;

use super::{Ctx, Pbx};
use crate::config::PbxConfig;
use crate::io::{Lookup, Now};
use crate::shard::Shared;
use crate::trunks::registration::Registrations;

/// Where each trunk's server is known to be before any lookup: its IP-literal proxy's address.
pub(super) fn known_addresses(config: &PbxConfig) -> Shared<Vec<Vec<IpAddr>>> {
    let literal = |t: &crate::trunks::TrunkConfig| {
        crate::trunks::literal_peers(&t.proxy).unwrap_or_default().iter().map(|p| p.addr.ip()).collect()
    };
    Shared::new(config.trunks.trunks.iter().map(literal).collect())
}

impl Pbx {
    /// Each carrier registration's state (the first shard keeps them), by trunk name.
    pub fn trunk_states(&self) -> Vec<(String, crate::trunks::TrunkState)> {
        let Some(registrations) = &self.registrations else { return Vec::new() };
        registrations
            .states()
            .filter_map(|(i, state)| Some((self.config.trunks.trunks.get(i)?.name.clone(), state.clone())))
            .collect()
    }

    /// The first shard starts the registrations at its first input.
    pub(super) fn start_registrations(&mut self, now: Now) {
        if self.registrations.is_none() && self.shard.is_home() {
            let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
            self.registrations = Some(Registrations::start(&self.config.trunks, &mut ctx));
        }
    }

    /// The registrations (and lookups of trunks) that are due.
    pub(super) fn registrations_due(&mut self, now: Now) {
        if let Some(registrations) = self.registrations.as_mut() {
            let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
            registrations.on_timeout(&mut ctx, &self.config.trunks);
        }
    }

    /// A carrier's answer to our REGISTER.
    pub(super) fn on_registration_response(&mut self, now: Now, trunk: usize, key: TxKey, response: &Response) {
        if let Some(registrations) = self.registrations.as_mut() {
            let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
            registrations.on_response(&mut ctx, &self.config.trunks, trunk, key, response);
        }
    }

    /// No connection could be made to `remote`: our requests that heard nothing back fail at
    /// once, as a 503 to their owners (RFC 3261 §8.1.3.1), so that the next address is tried.
    pub(super) fn on_unreachable(&mut self, now: Now, transport: &Transport, remote: SocketAddr) {
        for key in self.sip.transactions.clients_to(transport, remote) {
            debug!(%remote, %transport, "unreachable: the request fails");
            // The transaction ends here, so its request is taken first.
            let failed = self.sip.transactions.request(key).map(|r| r.reply(503, "Service Unavailable"));
            self.sip.transactions.handle_transport_error(key, now.instant);
            if let Some(failed) = failed {
                self.on_response(now, key, failed);
            }
        }
    }

    /// A lookup finished: a call's way out goes on; a trunk's server is where its calls come
    /// from now (what it resolved to before no longer counts), and its registration goes on.
    pub(super) fn on_lookup(&mut self, now: Now, lookup: Lookup, result: Result<Vec<sambung_dns::Target>, String>) {
        match lookup {
            Lookup::Call(call) => self.with_calls(now, |calls, ctx, env| calls.on_resolved(ctx, env, call, result)),
            Lookup::Trunk(trunk) => {
                if let Ok(targets) = &result
                    && let Some(known) = self.trunk_addresses.write().get_mut(trunk)
                {
                    known.clear();
                    for target in targets {
                        if !known.contains(&target.addr.ip()) {
                            known.push(target.addr.ip());
                        }
                    }
                }
                let peers = result.map(|targets| crate::trunks::peers_of(&targets));
                if let Some(registrations) = self.registrations.as_mut() {
                    let mut ctx = Ctx { now, sip: &mut self.sip, out: &mut self.out, random: &mut self.random };
                    registrations.on_resolved(&mut ctx, &self.config.trunks, trunk, peers);
                }
            }
        }
    }

    /// The trunk whose carrier sends from `source`, if any (without trunks, nothing is looked
    /// at: every INVITE asks).
    pub(super) fn trunk_of(&self, source: IpAddr) -> Option<usize> {
        if self.config.trunks.is_empty() {
            return None;
        }
        let addresses = self.trunk_addresses.read();
        self.config
            .trunks
            .trunks
            .iter()
            .enumerate()
            .find(|(i, t)| t.sent_from(source, addresses.get(*i).map_or(&[], Vec::as_slice)))
            .map(|(i, _)| i)
    }
}
