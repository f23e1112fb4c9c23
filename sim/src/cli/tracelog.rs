//! The log of `dst run --trace` and `dst replay --trace`: one line per event, in simulated
//! time, named after the node it happened on (`member-2`, `client-0`, `watcher-5`,
//! `client-final`, `madsim-main` for the nemesis). madsim's node ids are left out: they are
//! not member ids (a node the simulator creates first shifts them), so a member has one
//! number in the log. No colour when stderr is not a terminal.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// What `--trace` shows without RUST_LOG: every trace record and client operation.
const DEFAULT_FILTER: &str = "warn,faultline_sim=debug";

/// Log to stderr; RUST_LOG filters.
pub fn install_trace_subscriber() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::stderr().is_terminal();
    if let Err(e) = subscriber(filter, std::io::stderr, ansi).try_init() {
        eprintln!("warning: could not install the trace subscriber: {e}");
    }
}

/// The subscriber: node names recorded from madsim's spans, lines in `LineFormat`.
fn subscriber<W>(filter: EnvFilter, writer: W, ansi: bool) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(filter)
        .with(NodeNames)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(writer)
                .event_format(LineFormat),
        )
}

/// The `name` of a madsim node span (`node{id=2 name="member-1"}`), kept in its extensions.
struct NodeName(String);

/// Records each madsim node span's name when the span is created.
struct NodeNames;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for NodeNames {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "node" {
            return;
        }
        let mut name = NameField(None);
        attrs.record(&mut name);
        if let (Some(name), Some(span)) = (name.0, ctx.span(id)) {
            span.extensions_mut().insert(NodeName(name));
        }
    }
}

/// The value of a field called `name`.
struct NameField(Option<String>);

impl Visit for NameField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "name" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "name" && self.0.is_none() {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_string());
        }
    }
}

/// `   1.234567s DEBUG member-2: member 2: RoleChanged { .. }`: simulated time, level, the node,
/// and the event (the target too, for events from outside the simulator's own code).
struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ansi = writer.has_ansi_escapes();
        let paint = |code: &str, text: &str| {
            if ansi {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_string()
            }
        };
        let time = match madsim::time::TimeHandle::try_current() {
            Some(time) => format!("{:>11.6}s", time.elapsed().as_secs_f64()),
            None => format!("{:>12}", "-"),
        };
        let level = *event.metadata().level();
        let level_color = match level {
            Level::ERROR => "31",
            Level::WARN => "33",
            Level::INFO => "32",
            Level::DEBUG => "34",
            Level::TRACE => "35",
        };
        // The innermost node span: the node the event happened on.
        let node = ctx
            .event_scope()
            .and_then(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| span.extensions().get::<NodeName>().map(|n| n.0.clone()))
                    .last()
            })
            .unwrap_or_else(|| "-".to_string());
        write!(
            writer,
            "{} {} {}: ",
            paint("2", &time),
            paint(level_color, &format!("{level:>5}")),
            paint("1", &node)
        )?;
        let target = event.metadata().target();
        if !target.starts_with("faultline_sim") {
            write!(writer, "{}: ", paint("2", target))?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_lines(ansi: bool) -> String {
        let buffer = Buffer::default();
        let make = {
            let buffer = buffer.clone();
            move || buffer.clone()
        };
        let subscriber = subscriber(EnvFilter::new("debug"), make, ansi);
        tracing::subscriber::with_default(subscriber, || {
            // As madsim names a member's node: its node id (2) is not the member id (1).
            let node = tracing::error_span!("node", id = 2, name = "member-1");
            let _entered = node.enter();
            let task = tracing::error_span!("task", id = 7);
            let _task = task.enter();
            tracing::debug!("member 1: RoleChanged");
        });
        let bytes = buffer.0.lock().expect("buffer").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn lines_name_the_node_without_madsim_ids_or_colour() {
        let text = log_lines(false);
        assert!(
            text.ends_with("member-1: member 1: RoleChanged\n"),
            "{text:?}"
        );
        assert!(!text.contains("id=") && !text.contains("task"), "{text:?}");
        assert!(
            !text.contains('\x1b'),
            "colour in a redirected log: {text:?}"
        );
        assert!(text.contains("DEBUG"), "{text:?}");
        // On a terminal, colour.
        assert!(log_lines(true).contains("\x1b["));
    }
}
