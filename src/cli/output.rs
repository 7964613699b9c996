//! `--format table|json` for commands that print data: a table for people (columns separated by tabs or
//! padded, with a header line) or JSON for scripts (one document on standard output).

use serde::Serialize;

/// How a command prints its data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Columns with a header line, for people (and `cut`/`awk`).
    #[default]
    Table,
    /// One JSON document, for scripts (`jq`).
    Json,
}

/// The `--format` option, flattened into each command that prints data.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct FormatArg {
    /// Output format: `table` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Prints `value` as pretty JSON on standard output.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
