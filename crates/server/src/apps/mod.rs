//! The applications that answer calls themselves: voicemail, the mailbox menu, confirmations.
