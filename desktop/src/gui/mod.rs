//! The iced face of the helper (`mailsite-helper gui`), shaped like halloy: [`State`]
//! and [`Message`] with an `update` that only changes state and names the work to do
//! ([`Effect`]), a `view` that only draws state ([`view`]), and [`job`], which runs
//! that work by calling the core. Nothing here probes, renders a report or stores a
//! preference itself.

pub mod job;
pub mod state;
pub mod view;

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use iced::{Font, Task, Theme};

pub use job::Job;
pub use state::{Effect, Message, Password, Phase, Startup, State, key_message};

/// The window's font: embedded (iced's `fira-sans`), so the window looks the same on
/// every machine, with or without system fonts.
pub const FONT: Font = Font::with_name("Fira Sans");

/// When `run` was called, for the first-frame log line.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Opens the window and runs until it is closed.
pub fn run(startup: Startup) -> iced::Result {
    let _ = STARTED.set(Instant::now());
    iced::application(move || boot(startup.clone()), update, view)
        .title(|state: &State| state.title())
        .window_size((860.0, 760.0))
        .default_font(FONT)
        .theme(|_: &State| Theme::Light)
        .subscription(|_: &State| iced::event::listen_with(keys))
        .run()
}

/// Key presses no widget took, as messages (Tab and Shift-Tab move the focus).
fn keys(event: iced::Event, _: iced::event::Status, _: iced::window::Id) -> Option<Message> {
    match event {
        iced::Event::Keyboard(iced::keyboard::Event::KeyPressed { key, modifiers, .. }) => {
            state::key_message(&key, modifiers)
        }
        _ => None,
    }
}

fn boot(startup: Startup) -> (State, Task<Message>) {
    let mut state = State::new(startup);
    let task = state.boot().map(perform).unwrap_or_else(Task::none);
    (state, task)
}

fn update(state: &mut State, message: Message) -> Task<Message> {
    state
        .update(message)
        .map(perform)
        .unwrap_or_else(Task::none)
}

fn view(state: &State) -> iced::Element<'_, Message> {
    static FIRST: OnceLock<()> = OnceLock::new();
    if FIRST.set(()).is_ok() {
        // The first view is drawn and presented right after, in the same turn of the
        // event loop; bench/helper.sh reads this line for "start to first frame".
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let since_run = STARTED.get().map(|t| t.elapsed().as_millis()).unwrap_or(0);
        tracing::info!(
            first_view_unix = unix,
            since_run_ms = since_run as u64,
            "first frame"
        );
    }
    view::view(state)
}

/// Turns the work `update` asked for into an iced task.
fn perform(effect: Effect) -> Task<Message> {
    match effect {
        Effect::Copy(text) => {
            iced::clipboard::write::<Message>(text).chain(Task::done(Message::Copied))
        }
        Effect::Run(job) => Task::run(job.run(), std::convert::identity),
        Effect::Focus { forward: true } => iced::widget::operation::focus_next(),
        Effect::Focus { forward: false } => iced::widget::operation::focus_previous(),
    }
}
