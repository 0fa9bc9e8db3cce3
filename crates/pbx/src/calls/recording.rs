//! Recording calls: a call answered between two phones is recorded when the configuration says
//! so (`[recording]`: its caller or callee is one of the recorded accounts, or it rang one of
//! the recorded groups), or when an operator asks through the API
//! ([`crate::Input::RecordCall`]). The relay then decodes both legs and writes what each says
//! on a channel of its own ([`MediaCommand::Record`]).

use tracing::info;

use super::CallEnv;
use super::call::{BSide, Call, State};
use crate::events::Event;
use crate::media::MediaCommand;
use crate::pbx::Ctx;

impl Call {
    /// The call was just answered between two phones: recorded if the configuration says so.
    pub(super) fn record_if_wanted(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>) {
        let config = env.config;
        let recorded = |user: &str| config.record_accounts.iter().any(|a| a.eq_ignore_ascii_case(user));
        let answered_by = self.answering_account(env);
        let by_account =
            (self.caller.id > 0 && recorded(&self.caller.username)) || answered_by.as_deref().is_some_and(recorded);
        let by_group = self
            .group
            .as_ref()
            .and_then(|ring| config.groups.groups.get(ring.group))
            .is_some_and(|group| config.record_groups.iter().any(|g| g.eq_ignore_ascii_case(&group.name)));
        if by_account || by_group {
            self.start_recording(ctx, env, config.record_notice);
        }
    }

    /// The username of the account whose device answered, if one did.
    fn answering_account(&self, env: &CallEnv<'_>) -> Option<String> {
        let State::Answered(answered) = &self.state else { return None };
        let BSide::Device { fork, .. } = &answered.b else { return None };
        let id = self.forks.get(*fork)?.account?;
        env.accounts.by_id(id).map(|a| a.username.clone())
    }

    /// Records the call from now on; false when it cannot be (not answered between two phones,
    /// a browser in it, no codec the engine decodes) or already is.
    pub(super) fn start_recording(&mut self, ctx: &mut Ctx<'_>, env: &CallEnv<'_>, notice: bool) -> bool {
        let between_phones = matches!(&self.state, State::Answered(a) if matches!(a.b, BSide::Device { .. }));
        if self.recording || !between_phones {
            return false;
        }
        let Some(formats) = self.media_mut().and_then(|m| m.recording_formats()) else { return false };
        let name = format!("{}-call-{}", ctx.now.unix_secs, self.id);
        info!(call = self.id, name, "recording the call");
        let (session, formats) = (self.id, Box::new(formats));
        ctx.out.media(MediaCommand::Record { session, formats, name: name.clone(), notice });
        // The parties as the recordings' owners: accounts by username; anyone else (a carrier's
        // caller, an outside URI) named so that no username can match it.
        let outside = |name: &str| format!("{name} (outside)");
        let caller = if self.caller.id > 0 { self.caller.username.clone() } else { outside(&self.caller.username) };
        let callee = match self.answering_account(env) {
            Some(user) => user,
            None => outside(&self.target.username),
        };
        ctx.out.event(Event::RecordingStarted { call: self.id, name, caller, callee, at: ctx.now.unix_secs });
        self.recording = true;
        true
    }
}
