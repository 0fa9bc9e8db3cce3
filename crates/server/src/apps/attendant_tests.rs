//! The auto-attendant's flows on a scripted caller: options, dial-by-extension, a target that
//! cannot take the call, silence, office hours and holidays in a time zone, and the checks of
//! `[[menus]]`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::attendant::{self, Action, Hours, Menu, Menus};
use super::prompts::Prompt;
use super::tests::{Script, Step, World};
use crate::config::{Config, MenuEntry};

/// 2023-11-14 22:13:20 UTC, a Tuesday: the scripts' clock.
const TUESDAY_NIGHT: i64 = 1_700_000_000;

fn menu(name: &str, options: &[(char, Action)]) -> Menu {
    Menu {
        name: name.into(),
        greeting: None,
        options: options.iter().cloned().collect::<BTreeMap<_, _>>(),
        dial_by_extension: true,
        timeout: Duration::from_secs(5),
        repeats: 2,
        on_timeout: None,
        hours: Vec::new(),
        holidays: Vec::new(),
        time_zone: jiff::tz::TimeZone::UTC,
        closed: None,
    }
}

async fn world_with(menus: Vec<Menu>) -> World {
    let mut world = World::new().await;
    world.context.menus = Arc::new(Menus { menus });
    world
}

#[tokio::test]
async fn an_option_connects_and_a_busy_target_brings_the_caller_back() {
    let sales = Action::Connect("sales".into());
    let world = world_with(vec![menu("main", &[('1', sales), ('9', Action::Hangup)])]).await;
    // 1: sales is busy, back to the menu; 1 again: answered.
    let mut script =
        Script::new([Step::Key('1'), Step::Pause, Step::Refused(486), Step::Key('1'), Step::Pause, Step::Answered]);
    let end = attendant::run(&world.context, &mut script, "main", &world.alice_calling()).await;
    assert_eq!(end, sambung_pbx::AppEnd::Hangup);
    assert_eq!(script.connects, ["sales", "sales"]);
    assert_eq!(script.prompts(), [Prompt::EnterExtension, Prompt::NotAvailable, Prompt::EnterExtension]);
}

#[tokio::test]
async fn an_extension_keyed_in_is_connected_and_an_unknown_one_is_said_so() {
    let world = world_with(vec![menu("main", &[('1', Action::Connect("sales".into()))])]).await;
    let mut script = Script::new([
        // 1 0 0 2 #: an extension, not option 1.
        Step::Key('1'),
        Step::Key('0'),
        Step::Key('0'),
        Step::Key('2'),
        Step::Key('#'),
        Step::Refused(404),
        // 4 7, then a pause: extension 47.
        Step::Key('4'),
        Step::Key('7'),
        Step::Pause,
        Step::Answered,
    ]);
    attendant::run(&world.context, &mut script, "main", &world.alice_calling()).await;
    assert_eq!(script.connects, ["extension:1002", "extension:47"]);
    assert_eq!(script.prompts(), [Prompt::EnterExtension, Prompt::NoSuchExtension, Prompt::EnterExtension]);
}

#[tokio::test]
async fn silence_repeats_the_menu_then_takes_the_timeout_choice() {
    let mut main = menu("main", &[]);
    main.dial_by_extension = false;
    main.on_timeout = Some(Action::Connect("voicemail:alice".into()));
    let world = world_with(vec![main]).await;
    let mut script = Script::new([Step::Pause, Step::Pause, Step::Answered]);
    attendant::run(&world.context, &mut script, "main", &world.alice_calling()).await;
    assert_eq!(script.prompts(), [Prompt::ChooseOption, Prompt::ChooseOption]);
    assert_eq!(script.connects, ["voicemail:alice"]);
    // Without a timeout choice: goodbye. A key that is no option is said to be invalid.
    let world = world_with(vec![menu("main", &[('1', Action::Repeat)])]).await;
    let mut script = Script::new([Step::Key('*'), Step::Pause, Step::Pause]);
    attendant::run(&world.context, &mut script, "main", &world.alice_calling()).await;
    assert_eq!(
        script.prompts(),
        [
            Prompt::EnterExtension,
            Prompt::InvalidOption,
            Prompt::EnterExtension,
            Prompt::EnterExtension,
            Prompt::Goodbye
        ]
    );
}

#[tokio::test]
async fn outside_the_hours_and_on_holidays_the_closed_menu_answers() {
    let mut main = menu("main", &[('1', Action::Connect("sales".into()))]);
    // Open on weekdays 09:00-17:30 in London; closed on Christmas Day.
    main.hours = vec![Hours::parse("mon-fri 09:00-17:30").unwrap()];
    main.holidays = vec!["2023-12-25".parse().unwrap()];
    main.time_zone = jiff::tz::TimeZone::get("Europe/London").unwrap();
    main.closed = Some("night".into());
    let night = menu("night", &[('1', Action::Connect("oncall".into()))]);
    let menus = Menus { menus: vec![main, night] };
    let at = |text: &str| text.parse::<jiff::Timestamp>().unwrap().as_second();
    let answering = |when: i64| menus.answering("main", when).unwrap().name.clone();
    assert_eq!(answering(TUESDAY_NIGHT), "night", "22:13 in London");
    assert_eq!(answering(at("2023-11-14T10:00:00Z")), "main", "a Tuesday morning");
    assert_eq!(answering(at("2023-11-18T10:00:00Z")), "night", "a Saturday");
    assert_eq!(answering(at("2023-12-25T10:00:00Z")), "night", "Christmas Day, a Monday");
    // Summer time: 08:30 UTC is 09:30 in London in July, 08:30 in January.
    assert_eq!(answering(at("2024-07-02T08:30:00Z")), "main");
    assert_eq!(answering(at("2024-01-02T08:30:00Z")), "night");
    let world = world_with(menus.menus.clone()).await;
    let mut script = Script::new([Step::Key('1'), Step::Pause, Step::Answered]);
    script.now = TUESDAY_NIGHT;
    attendant::run(&world.context, &mut script, "main", &world.alice_calling()).await;
    assert_eq!(script.connects, ["oncall"]);
}

#[test]
fn hours_parse() {
    let h = Hours::parse("fri-mon 22:00-24:00").unwrap();
    assert_eq!(h, Hours::parse("fri,sat,sun,mon 22:00-24:00").unwrap());
    assert!(Hours::parse("daily 08:00-20:00").is_ok());
    for bad in ["mon-fri", "mon-fri 17:00-09:00", "someday 09:00-10:00", "mon 09:60-10:00", "mon 9-10"] {
        assert!(Hours::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn menus_are_checked() {
    let config = |menus: Vec<MenuEntry>| Config { menus, ..Config::default() };
    let entry = |name: &str| MenuEntry { name: name.into(), ..MenuEntry::default() };
    let mut main = entry("main");
    main.extension = Some("500".into());
    main.options.insert("1".into(), "menu:night".into());
    main.options.insert("2".into(), "sales".into());
    main.hours = vec!["mon-fri 09:00-17:00".into()];
    main.time_zone = "Europe/Berlin".into();
    main.closed = Some("night".into());
    assert!(config(vec![main.clone(), entry("night")]).validate().is_ok());
    let error = |menus: Vec<MenuEntry>| config(menus).validate().unwrap_err().to_string();
    assert!(error(vec![main.clone()]).contains("no menu is named \"night\""));
    let mut bad = main.clone();
    bad.options.insert("12".into(), "sales".into());
    assert!(error(vec![bad, entry("night")]).contains("not one key"));
    let mut bad = main.clone();
    bad.time_zone = "Mars/Olympus_Mons".into();
    assert!(error(vec![bad, entry("night")]).contains("time zone"));
    let mut bad = main.clone();
    bad.holidays = vec!["25/12/2026".into()];
    assert!(error(vec![bad, entry("night")]).contains("not a date"));
    let mut bad = main.clone();
    bad.greeting = Some("/nonexistent/greeting.wav".into());
    assert!(error(vec![bad, entry("night")]).contains("greeting"));
    let mut twin = entry("other");
    twin.extension = Some("500".into());
    assert!(error(vec![main, entry("night"), twin]).contains("already the name or extension"));
}

/// `*45` / `*46` from an agent's phone: said, and kept in the store; anyone else hears that the
/// code is not valid.
#[tokio::test]
async fn agents_log_out_and_in_by_feature_code() {
    use super::queue::{QueueConfig, Queues};
    let mut world = World::new().await;
    let support = QueueConfig::sample("support", &["alice"]);
    world.context.queues = Queues::new(vec![support], &[], None, std::time::Instant::now());
    let alice = world.alice_calling();
    let mut script = Script::new([]);
    super::queue::login(&world.context, &mut script, &alice, false).await;
    assert_eq!(script.prompts(), [Prompt::AgentLoggedOut]);
    assert_eq!(world.context.queues.is_logged_in("alice"), Some(false));
    assert_eq!(world.context.store.agents_logged_out().await.unwrap(), ["alice"]);
    let mut script = Script::new([]);
    super::queue::login(&world.context, &mut script, &alice, true).await;
    assert_eq!(script.prompts(), [Prompt::AgentLoggedIn]);
    assert!(world.context.store.agents_logged_out().await.unwrap().is_empty());
    let bob = sambung_pbx::Caller { username: "bob".into(), account_id: world.bob.id, ..alice };
    let mut script = Script::new([]);
    super::queue::login(&world.context, &mut script, &bob, true).await;
    assert_eq!(script.prompts(), [Prompt::InvalidCode]);
}
