//! `mesh top`: a live table of the most frequent requests, from the tap stream.

mod table;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use crossterm::{cursor, execute, terminal};

use super::GlobalArgs;
use crate::cmd::tap::{Filter, start};
use table::Table;

/// Show a live table of a resource's most frequent requests
///
/// Taps the resource's pods (see `mesh tap`) and keeps one row per source, destination,
/// method and path, sorted by count, with the best, worst and last latency and the success
/// rate. Redraws every second; press q to quit. Tap must be on in the proxies: see
/// `mesh tap --help` (in short, `mesh inject --enable-tap`, or the annotation
/// config.linkerd.io/enable-tap=true on a pod template or namespace).
///
/// Example:
///   mesh top deploy/web -n emojivoto
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The resource, TYPE/NAME
    #[arg(value_name = "TYPE/NAME")]
    resource: String,
    #[command(flatten)]
    filter: Filter,
    /// How many rows to show (default: as many as the terminal has room for)
    #[arg(long, value_name = "N")]
    rows: Option<usize>,
}

const REDRAW_EVERY: Duration = Duration::from_secs(1);

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("mesh top draws on a terminal; use mesh tap to record requests");
    }
    let runtime = crate::cmd::runtime()?;
    runtime.block_on(async {
        let (mut events, pods) = start(&args.resource, &args.filter, global).await?;
        let _screen = Screen::enter()?;
        let mut keys = keys();
        let mut table = Table::default();
        let mut tick = tokio::time::interval(REDRAW_EVERY);
        let title = format!("mesh top {} ({} pods)", args.resource, pods.len());
        loop {
            tokio::select! {
                next = events.recv() => match next {
                    Some(tapped) => table.add(&tapped),
                    None => return Ok(ExitCode::SUCCESS),
                },
                key = keys.recv() => match key {
                    Some(Quit) | None => return Ok(ExitCode::SUCCESS),
                },
                _ = tick.tick() => {
                    let (width, height) = terminal::size().unwrap_or((120, 40));
                    let room = usize::from(height).saturating_sub(4);
                    let text = table.render(&title, args.rows.unwrap_or(room), usize::from(width));
                    draw(&text)?;
                }
            }
        }
    })
}

struct Quit;

/// Reads the keyboard on a thread of its own (crossterm's reads block) and reports `q`,
/// Esc and Ctrl-C.
fn keys() -> tokio::sync::mpsc::Receiver<Quit> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::thread::spawn(move || {
        loop {
            match crossterm::event::poll(Duration::from_millis(200)) {
                Ok(true) => {}
                Ok(false) => {
                    if tx.is_closed() {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
            let quit = match crossterm::event::read() {
                Ok(TermEvent::Key(KeyEvent {
                    code, modifiers, ..
                })) => {
                    matches!(code, KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc)
                        || (code == KeyCode::Char('c') && modifiers.contains(KeyModifiers::CONTROL))
                }
                Ok(_) => false,
                Err(_) => true,
            };
            if quit {
                let _ = tx.blocking_send(Quit);
                return;
            }
        }
    });
    rx
}

/// The alternate screen in raw mode, restored on drop, even on error.
struct Screen;

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let screen = Screen;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )
        .context("cannot draw on the terminal")?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

fn draw(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    execute!(
        out,
        cursor::MoveTo(0, 0),
        terminal::Clear(terminal::ClearType::All)
    )?;
    for line in text.lines() {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\r\n")?;
    }
    out.flush()?;
    Ok(())
}
