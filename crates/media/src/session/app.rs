//! An application leg: an [`Endpoint`] without SRTP of its own (the partner RTP leg's keys
//! unprotect what the partner sends and protect what is sent to it), a small queue of the
//! frames the application said, and the resamplers it uses in a mix.

use std::collections::VecDeque;

use super::{APP_QUEUE, SessionError};
use crate::endpoint::{Endpoint, EndpointConfig};
use crate::mixer;
use crate::negotiate::Negotiated;
use crate::resample::Resampler;

#[derive(Debug)]
pub(super) struct AppLeg {
    /// Decodes the partner's audio and encodes the application's, as the partner's codec.
    pub(super) endpoint: Endpoint,
    /// Samples per frame at the application's rate.
    pub(super) frame: usize,
    /// Frames said, waiting for their tick.
    played: VecDeque<Vec<i16>>,
    /// Frame buffers to reuse.
    spare: Vec<Vec<i16>>,
    silence: Vec<i16>,
    /// The application's rate to the mixer's and back.
    pub(super) to_mix: Resampler,
    pub(super) from_mix: Resampler,
}

impl AppLeg {
    pub(super) fn new(format: &Negotiated, rate: u32, ssrc: u32, seed: u64) -> Result<AppLeg, SessionError> {
        let mut config = EndpointConfig::new(format.clone(), ssrc, rate);
        config.seed = seed;
        let endpoint = Endpoint::new(config)?;
        let frame = endpoint.frame_len();
        let resampler = |from, to| Resampler::new(from, to).map_err(|e| SessionError::App(e.into()));
        Ok(AppLeg {
            endpoint,
            frame,
            played: VecDeque::with_capacity(APP_QUEUE + 1),
            spare: Vec::new(),
            silence: vec![0; frame],
            to_mix: resampler(rate, mixer::SAMPLE_RATE)?,
            from_mix: resampler(mixer::SAMPLE_RATE, rate)?,
        })
    }

    /// Queues a frame the application says.
    pub(super) fn play(&mut self, frame: &[i16]) -> Result<(), SessionError> {
        if frame.len() != self.frame {
            return Err(SessionError::FrameLength { expected: self.frame, got: frame.len() });
        }
        let mut buf = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(self.frame));
        buf.clear();
        buf.extend_from_slice(frame);
        self.played.push_back(buf);
        while self.played.len() > APP_QUEUE {
            if let Some(old) = self.played.pop_front() {
                self.spare.push(old);
            }
        }
        Ok(())
    }

    /// The frame to say this tick (silence when the application queued none); give it back
    /// with [`Self::done`].
    pub(super) fn next_frame(&mut self) -> Vec<i16> {
        match self.played.pop_front() {
            Some(frame) => frame,
            None => {
                let mut buf = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(self.frame));
                buf.clear();
                buf.extend_from_slice(&self.silence);
                buf
            }
        }
    }

    pub(super) fn done(&mut self, frame: Vec<i16>) {
        if self.spare.len() < APP_QUEUE + 2 {
            self.spare.push(frame);
        }
    }

    /// A frame of silence at the application's rate.
    pub(super) fn silence(&self) -> Vec<i16> {
        self.silence.clone()
    }
}
