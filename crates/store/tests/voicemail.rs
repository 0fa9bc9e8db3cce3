//! Voicemail messages and the outgoing mail queue on both backends.

mod common;

use common::TestDb;
use sambung_store::{NewAccount, NewMail, NewVoicemail, Store, StoreError, Voicemail, VoicemailState};

on_both_backends!(
    voicemail_store_list_state_delete,
    voicemail_counts_and_copies,
    voicemail_goes_with_account,
    outbox_send_retry_give_up,
    outbox_refusals
);

async fn account(store: &Store, name: &str) -> i64 {
    store.create_account(NewAccount::new(name, "correct horse", "example.com")).await.unwrap().id
}

/// A distinct "WAV file" per message, large enough to span several database pages.
fn audio(seed: u8) -> Vec<u8> {
    let mut wav = b"RIFF\0\0\0\0WAVE".to_vec();
    wav.extend((0..40_000u32).map(|i| (i as u8).wrapping_mul(seed)));
    wav
}

fn message(account_id: i64, caller: &str, at: i64, seed: u8) -> NewVoicemail {
    NewVoicemail {
        account_id,
        caller_uri: format!("sip:{caller}@example.com"),
        caller_name: caller.to_uppercase(),
        caller_number: (caller == "bob").then(|| "1002".to_owned()),
        created_at: at,
        duration_ms: 1000 * i64::from(seed),
        audio: audio(seed),
    }
}

async fn voicemail_store_list_state_delete(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    assert!(store.voicemails(alice, None).await.unwrap().is_empty());

    // Stored out of time order: listed oldest first.
    let later = store.store_voicemail(message(alice, "bob", 2000, 3)).await.unwrap();
    let earlier = store.store_voicemail(message(alice, "carol", 1000, 5)).await.unwrap();
    assert_eq!(
        later,
        Voicemail {
            id: later.id,
            account_id: alice,
            caller_uri: "sip:bob@example.com".into(),
            caller_name: "BOB".into(),
            caller_number: Some("1002".into()),
            created_at: 2000,
            duration_ms: 3000,
            state: VoicemailState::New,
        }
    );
    assert_eq!(earlier.caller_number, None);
    assert_eq!(store.voicemails(alice, None).await.unwrap(), [earlier.clone(), later.clone()]);
    assert!(store.voicemails(bob, None).await.unwrap().is_empty());
    assert_eq!(store.voicemail_audio(later.id).await.unwrap(), Some(audio(3)));
    assert_eq!(store.voicemail_audio(earlier.id).await.unwrap(), Some(audio(5)));

    store.set_voicemail_state(earlier.id, VoicemailState::Saved).await.unwrap();
    let saved = Voicemail { state: VoicemailState::Saved, ..earlier.clone() };
    assert_eq!(store.voicemails(alice, Some(VoicemailState::Saved)).await.unwrap(), std::slice::from_ref(&saved));
    assert_eq!(store.voicemails(alice, Some(VoicemailState::New)).await.unwrap(), std::slice::from_ref(&later));
    assert_eq!(store.voicemails(alice, None).await.unwrap(), [saved.clone(), later.clone()]);
    store.set_voicemail_state(earlier.id, VoicemailState::New).await.unwrap();
    assert_eq!(store.voicemails(alice, Some(VoicemailState::New)).await.unwrap().len(), 2);

    assert!(store.delete_voicemail(later.id).await.unwrap());
    assert!(!store.delete_voicemail(later.id).await.unwrap(), "already gone");
    assert_eq!(store.voicemail_audio(later.id).await.unwrap(), None);
    assert_eq!(store.voicemails(alice, None).await.unwrap(), std::slice::from_ref(&earlier));

    let err = store.set_voicemail_state(later.id, VoicemailState::Saved).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownVoicemail(id) if id == later.id), "{err:?}");
    let err = store.store_voicemail(message(alice + bob + 10, "bob", 3000, 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownAccount(_)), "{err:?}");
    let err = store.store_voicemail(NewVoicemail { duration_ms: -1, ..message(alice, "bob", 3000, 1) }).await;
    assert!(matches!(err, Err(StoreError::Invalid { .. })), "{err:?}");
    assert_eq!(store.voicemails(alice, None).await.unwrap().len(), 1, "refused messages are not stored");
    store.close().await;
}

async fn voicemail_counts_and_copies(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let carol = account(&store, "carol").await;
    assert_eq!(store.voicemail_counts(alice).await.unwrap(), (0, 0));
    assert!(store.all_voicemail_counts().await.unwrap().is_empty());

    let m1 = store.store_voicemail(message(alice, "bob", 100, 1)).await.unwrap();
    let m2 = store.store_voicemail(message(alice, "bob", 200, 2)).await.unwrap();
    store.store_voicemail(message(alice, "dave", 300, 3)).await.unwrap();
    let c1 = store.store_voicemail(message(carol, "alice", 400, 4)).await.unwrap();
    store.set_voicemail_state(m1.id, VoicemailState::Saved).await.unwrap();
    store.set_voicemail_state(c1.id, VoicemailState::Saved).await.unwrap();
    assert_eq!(store.voicemail_counts(alice).await.unwrap(), (2, 1));
    assert_eq!(store.voicemail_counts(bob).await.unwrap(), (0, 0));
    assert_eq!(store.voicemail_counts(carol).await.unwrap(), (0, 1));
    assert_eq!(store.all_voicemail_counts().await.unwrap(), [(alice, 2, 1), (carol, 0, 1)]);

    // A saved message copied: new in the other mailbox, same caller, time and audio.
    let copy = store.copy_voicemail(m1.id, bob).await.unwrap();
    assert_ne!(copy.id, m1.id);
    assert_eq!(copy, Voicemail { id: copy.id, account_id: bob, state: VoicemailState::New, ..m1.clone() });
    assert_eq!(store.voicemail_audio(copy.id).await.unwrap(), Some(audio(1)));
    assert_eq!(store.voicemails(bob, None).await.unwrap(), std::slice::from_ref(&copy));
    assert_eq!(store.all_voicemail_counts().await.unwrap(), [(alice, 2, 1), (bob, 1, 0), (carol, 0, 1)]);
    // The copies are independent.
    assert!(store.delete_voicemail(m1.id).await.unwrap());
    assert_eq!(store.voicemail_audio(copy.id).await.unwrap(), Some(audio(1)));
    store.set_voicemail_state(copy.id, VoicemailState::Saved).await.unwrap();
    assert_eq!(store.voicemails(alice, None).await.unwrap()[0].id, m2.id);
    assert_eq!(store.voicemail_counts(alice).await.unwrap(), (2, 0));
    assert_eq!(store.voicemail_counts(bob).await.unwrap(), (0, 1));

    let err = store.copy_voicemail(m1.id, bob).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownVoicemail(id) if id == m1.id), "{err:?}");
    let nobody = alice + bob + carol + 10;
    let err = store.copy_voicemail(m2.id, nobody).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownAccount(id) if id == nobody), "{err:?}");
    store.close().await;
}

async fn voicemail_goes_with_account(db: &TestDb) {
    let store = db.open().await;
    let alice = account(&store, "alice").await;
    let bob = account(&store, "bob").await;
    let a = store.store_voicemail(message(alice, "bob", 100, 1)).await.unwrap();
    let b = store.store_voicemail(message(bob, "alice", 100, 2)).await.unwrap();
    store.delete_account("alice").await.unwrap();
    assert_eq!(store.voicemail_audio(a.id).await.unwrap(), None, "alice's messages are deleted with her");
    assert_eq!(store.voicemails(alice, None).await.unwrap(), []);
    assert_eq!(store.voicemails(bob, None).await.unwrap(), [b], "a message left by alice stays");
    assert_eq!(store.all_voicemail_counts().await.unwrap(), [(bob, 1, 0)]);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM voicemails").await, 1);
    store.close().await;
}

fn mail(to: &str, subject: &str, attach: bool) -> NewMail {
    NewMail {
        to: to.into(),
        subject: subject.into(),
        body: format!("Dear {to},\nyou have a new message. Grüße \u{1F4DE}\n"),
        attachment: attach.then(|| ("msg0001.wav".to_owned(), "audio/wav".to_owned(), audio(7))),
    }
}

async fn outbox_send_retry_give_up(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.next_mail_due().await.unwrap(), None);
    assert!(store.due_mail(i64::MAX, 10).await.unwrap().is_empty());

    let a = store.enqueue_mail(mail("alice@example.com", "New voicemail from bob", true), 1000).await.unwrap();
    let b = store.enqueue_mail(mail("bob@example.com", "New voicemail from alice", false), 1001).await.unwrap();
    let c = store.enqueue_mail(mail("carol@example.com", "New voicemail from dave", false), 1002).await.unwrap();
    assert!(a < b && b < c);
    assert_eq!(store.next_mail_due().await.unwrap(), Some(1000));
    assert!(store.due_mail(999, 10).await.unwrap().is_empty(), "nothing due before it was queued");
    assert_eq!(store.due_mail(1001, 10).await.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(), [a, b]);

    let due = store.due_mail(1002, 10).await.unwrap();
    assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), [a, b, c], "oldest first");
    let first = &due[0];
    assert_eq!((first.to.as_str(), first.subject.as_str()), ("alice@example.com", "New voicemail from bob"));
    assert_eq!(first.body, mail("alice@example.com", "", true).body);
    assert_eq!(first.attachment, Some(("msg0001.wav".to_owned(), "audio/wav".to_owned(), audio(7))));
    assert_eq!((first.attempts, first.created_at), (0, 1000));
    assert_eq!(due[1].attachment, None);
    assert_eq!(store.due_mail(1002, 2).await.unwrap().len(), 2, "limited");

    // a: sent. b: fails, retried later, then sent. c: fails twice and is given up.
    store.mail_sent(a, 1005).await.unwrap();
    store.mail_failed(b, "connection refused", Some(1060)).await.unwrap();
    store.mail_failed(c, "450 mailbox busy", Some(1030)).await.unwrap();
    assert_eq!(store.next_mail_due().await.unwrap(), Some(1030));
    assert!(store.due_mail(1029, 10).await.unwrap().is_empty(), "the failed ones wait for their retry time");
    let due = store.due_mail(1030, 10).await.unwrap();
    assert_eq!(due.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(c, 1)]);
    store.mail_failed(c, "550 no such user", None).await.unwrap();
    assert_eq!(store.next_mail_due().await.unwrap(), Some(1060));
    let due = store.due_mail(5000, 10).await.unwrap();
    assert_eq!(due.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(b, 1)], "c given up, a sent");
    store.mail_sent(b, 1061).await.unwrap();
    assert_eq!(store.next_mail_due().await.unwrap(), None);
    assert!(store.due_mail(i64::MAX, 10).await.unwrap().is_empty());

    // The record stays: last error and attempts of the given-up mail, the times of the sent ones.
    assert_eq!(db.scalar("SELECT COUNT(*) FROM mail_outbox").await, 3);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM mail_outbox WHERE state = 'sent' AND sent_at >= 1005").await, 2);
    assert_eq!(
        db.scalar("SELECT CAST(attempts AS BIGINT) FROM mail_outbox WHERE state = 'failed' AND last_error = '550 no such user'").await,
        2
    );
    // Reports about finished mails change nothing.
    store.mail_failed(c, "late report", Some(9000)).await.unwrap();
    store.mail_failed(a, "late report", Some(9000)).await.unwrap();
    assert_eq!(store.next_mail_due().await.unwrap(), None);

    let err = store.mail_sent(c + 100, 2000).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownMail(_)), "{err:?}");
    let err = store.mail_failed(c + 100, "x", None).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownMail(_)), "{err:?}");
    store.close().await;
}

async fn outbox_refusals(db: &TestDb) {
    let store = db.open().await;
    for to in ["", "alice", "alice@", "@example.com", "a@example.com, b@example.com", "a@example.com\r\nBcc: x@y"] {
        let err = store.enqueue_mail(mail(to, "subject", false), 1).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid { field: "mail recipient", .. }), "{to:?}: {err:?}");
    }
    let err = store.enqueue_mail(mail("a@example.com", "two\r\nBcc: x@y", false), 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "mail subject", .. }), "{err:?}");
    let bad_name = NewMail {
        attachment: Some(("msg\n.wav".into(), "audio/wav".into(), vec![1])),
        ..mail("a@example.com", "s", false)
    };
    let err = store.enqueue_mail(bad_name, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "mail attachment", .. }), "{err:?}");
    assert_eq!(store.next_mail_due().await.unwrap(), None, "nothing was queued");
    // Local addresses without a dot are fine.
    store.enqueue_mail(mail("root@localhost", "s", false), 1).await.unwrap();
    assert_eq!(store.next_mail_due().await.unwrap(), Some(1));
    store.close().await;
}
