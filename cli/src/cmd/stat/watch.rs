//! `--watch`: the table redrawn in place every window, until Ctrl-C.
//!
//! On a terminal each refresh clears the screen and draws from the top left, under a header
//! saying how often it refreshes; anywhere else each refresh is appended, so `--watch` can be
//! logged.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use crossterm::{cursor, execute, terminal};

use super::Frame;

pub struct Screen {
    terminal: bool,
    title: String,
    window: Duration,
}

impl Screen {
    pub fn new(watch: bool, title: &str, window: Duration) -> Screen {
        Screen {
            terminal: watch && std::io::stdout().is_terminal(),
            title: title.trim().to_string(),
            window,
        }
    }

    /// Shows at once that the first window is being sampled, so the screen is not blank for it.
    pub fn sampling(&mut self) -> std::io::Result<()> {
        if self.terminal {
            let mut out = std::io::stdout().lock();
            self.redraw(&mut out, None, &format!("sampling… {:?}\n", self.window))?;
            out.flush()
        } else {
            eprintln!("sampling… {:?}", self.window);
            Ok(())
        }
    }

    /// Clears the terminal and writes the header (with the refresh number once there is one),
    /// then `body`.
    fn redraw(
        &self,
        out: &mut impl Write,
        refresh: Option<u64>,
        body: &str,
    ) -> std::io::Result<()> {
        execute!(
            out,
            cursor::MoveTo(0, 0),
            terminal::Clear(terminal::ClearType::All)
        )?;
        let refresh = refresh.map_or(String::new(), |n| format!("    refresh {n}"));
        let header = format!(
            "Every {:?}: {}{refresh}    Ctrl-C to quit\n\n",
            self.window, self.title
        );
        // In a terminal a bare \n does not return the carriage in raw mode; we are not in raw
        // mode, but write \r\n anyway so the frame survives either.
        write_lines(out, &header)?;
        write_lines(out, body)
    }

    /// Shows refresh number `refresh`, with `notes` under the table on a terminal.
    pub fn draw(&mut self, refresh: u64, frame: &Frame, notes: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.terminal {
            let body = format!("{}{notes}{}", frame.body, frame.footnote);
            self.redraw(&mut out, Some(refresh), &body)?;
        } else {
            if refresh > 1 {
                out.write_all(b"\n")?;
            }
            out.write_all(frame.body.as_bytes())?;
            if !frame.footnote.is_empty() {
                eprint!("{}", frame.footnote);
            }
        }
        out.flush()
    }

    /// Leaves the last frame on screen and ends the run successfully.
    pub fn quit(&mut self) -> ExitCode {
        if self.terminal {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\r\n");
            let _ = out.flush();
        }
        ExitCode::SUCCESS
    }
}

fn write_lines(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    for line in text.split_inclusive('\n') {
        match line.strip_suffix('\n') {
            Some(body) => {
                out.write_all(body.as_bytes())?;
                out.write_all(b"\r\n")?;
            }
            None => out.write_all(line.as_bytes())?,
        }
    }
    Ok(())
}
