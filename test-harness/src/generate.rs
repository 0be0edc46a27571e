//! Picks the next step from the seeded stream, weighted by what the world allows: events
//! come from online devices, held-back storage results get delivered, a "focus" user
//! sends in bursts (to meet the rate limit), the clock moves and sometimes jumps.

use crate::action::{Action, Step, MALFORMED_VARIANTS};
use crate::faults::FaultyStore;
use crate::rng::{derive, Rng};
use crate::world::World;

pub struct Generator {
    rng: Rng,
    focus: u8,
}

#[derive(Clone, Copy)]
enum Kind {
    Deliver,
    Connect,
    Disconnect,
    Send,
    Retry,
    Reuse,
    Join,
    Leave,
    Typing,
    Read,
    Sync,
    Ping,
    CreateGroup,
    CreateDm,
    AddMember,
    RemoveMember,
    Rename,
    ListChats,
    History,
    Malformed,
    BadConnect,
    BadHttp,
    Tick,
    Jump,
    Crash,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self { rng: Rng::new(derive(seed, 0x6E4)), focus: 0 }
    }

    pub fn next(&mut self, world: &World) -> Step {
        let action = self.action(world);
        Step { action, salt: self.rng.next_u64() }
    }

    fn action(&mut self, world: &World) -> Action {
        let online = world.online_devices();
        let pending = world.pending_storage() as u32;
        let any_online = !online.is_empty();
        let on = |w: u32| if any_online { w } else { 0 };
        let table: [(Kind, u32); 25] = [
            (Kind::Deliver, if pending > 0 { 100 + 40 * pending.min(10) } else { 0 }),
            (Kind::Connect, if any_online { 40 } else { 300 }),
            (Kind::Disconnect, 12),
            (Kind::Send, on(260)),
            (Kind::Retry, on(30)),
            (Kind::Reuse, on(3)),
            (Kind::Join, on(50)),
            (Kind::Leave, on(10)),
            (Kind::Typing, on(70)),
            (Kind::Read, on(50)),
            (Kind::Sync, on(20)),
            (Kind::Ping, on(5)),
            (Kind::CreateGroup, on(4)),
            (Kind::CreateDm, on(4)),
            (Kind::AddMember, 14),
            (Kind::RemoveMember, 14),
            (Kind::Rename, 3),
            (Kind::ListChats, 8),
            (Kind::History, 8),
            (Kind::Malformed, on(15)),
            (Kind::BadConnect, 3),
            (Kind::BadHttp, 4),
            (Kind::Tick, 120),
            (Kind::Jump, 6),
            (Kind::Crash, world.cfg.faults.crash),
        ];
        let weights: Vec<u32> = table.iter().map(|(_, w)| *w).collect();
        let kind = table[self.rng.weighted(&weights)].0;
        if self.rng.chance(30) {
            self.focus = self.rng.below(world.users.len() as u64) as u8;
        }
        let rng = &mut self.rng;
        // An online device, most often one of the focus user's.
        let (user, device) = {
            let focused: Vec<&(usize, usize)> = online.iter().filter(|(u, _)| *u as u8 == self.focus).collect();
            let &(u, d) = if !focused.is_empty() && rng.chance(600) {
                focused[rng.index(focused.len())]
            } else if online.is_empty() {
                &(0, 0)
            } else {
                &online[rng.index(online.len())]
            };
            (u as u8, d as u8)
        };
        let anyone = rng.below(world.users.len() as u64) as u8;
        let chat = if rng.chance(50) { 200 + rng.below(56) as u8 } else { rng.below(200) as u8 };
        match kind {
            Kind::Deliver => {
                let pick = rng.below(u64::from(pending)) as u32;
                let request = &world.storage.pending[pick as usize].request;
                Action::Deliver { pick, fault: FaultyStore::choose_fault(rng, &world.cfg.faults, request) }
            }
            Kind::Connect => {
                let device = rng.below(world.cfg.devices as u64) as u8;
                Action::Connect { user: anyone, device, auto_join: rng.chance(500) }
            }
            Kind::Disconnect => Action::Disconnect { user: anyone, device: rng.below(world.cfg.devices as u64) as u8 },
            Kind::Send => Action::Send {
                user,
                device,
                chat,
                body: rng.below(100_000) as u32,
                image: rng.chance(50),
                client_id: rng.next_u128(),
                ack: !rng.chance(30),
            },
            Kind::Retry => Action::Retry { user, device, pick: rng.below(64) as u16 },
            Kind::Reuse => Action::Reuse { user, device, pick: rng.below(64) as u16, body: rng.below(1000) as u32 },
            Kind::Join => Action::Join { user, device, chat, any: rng.chance(150) },
            Kind::Leave => Action::Leave { user, device, chat },
            Kind::Typing => Action::Typing { user, device, chat, start: rng.chance(800), ack: rng.chance(100) },
            Kind::Read => Action::Read { user, device, chat, pick: if rng.chance(30) { u16::MAX } else { rng.below(1000) as u16 } },
            Kind::Sync => Action::Sync { user, device, chat, after: rng.below(1000) as u16, limit: rng.pick(&[0, 1, 2, 5, 200]) },
            Kind::Ping => Action::Ping { user, device },
            Kind::CreateGroup => Action::CreateGroup { user, device, members: rng.next_u64() as u32 },
            Kind::CreateDm => Action::CreateDm { user, device, other: anyone },
            Kind::AddMember => Action::AddMember { actor: anyone, chat, member: rng.below(world.users.len() as u64) as u8 },
            Kind::RemoveMember => {
                // Mostly members leaving, sometimes the creator (or anyone) removing another.
                let member = if rng.chance(500) { anyone } else { rng.below(world.users.len() as u64) as u8 };
                Action::RemoveMember { actor: anyone, chat, member }
            }
            Kind::Rename => Action::Rename { actor: anyone, chat, title: rng.below(1000) as u32 },
            Kind::ListChats => Action::ListChats { user: anyone },
            Kind::History => Action::History {
                user: anyone,
                chat,
                before: rng.chance(500),
                at: rng.below(1000) as u16,
                limit: rng.pick(&[0, 1, 3, 200]),
            },
            Kind::Malformed => Action::Malformed { user, device, variant: rng.below(u64::from(MALFORMED_VARIANTS)) as u8, chat },
            Kind::BadConnect => Action::BadConnect { user: anyone, device: rng.below(world.cfg.devices as u64) as u8, variant: rng.below(4) as u8 },
            Kind::BadHttp => Action::BadHttp { user: anyone, variant: rng.below(6) as u8, chat },
            Kind::Tick => Action::Advance { ms: if rng.chance(850) { rng.range(1, 300) } else { rng.range(300, 3_000) } },
            Kind::Jump => Action::Advance { ms: rng.range(10_000, 120_000) },
            Kind::Crash => Action::Crash,
        }
    }
}
