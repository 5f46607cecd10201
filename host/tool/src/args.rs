//! A small command-line reader for the subcommands: `--name value`, `--name=value`, flags, and
//! positional arguments, with errors that name the option.

use super::{ToolError, usage};
use std::str::FromStr;

/// Walks one subcommand's arguments.
pub struct Parser {
    args: Vec<String>,
    i: usize,
    inline: Option<String>,
}

impl Parser {
    /// A parser over `args` (the arguments after the subcommand's name).
    pub fn new(args: &[String]) -> Parser {
        Parser {
            args: args.to_vec(),
            i: 0,
            inline: None,
        }
    }

    /// The next argument; `--name=value` comes back as `--name`, its value kept for
    /// [`Parser::value`]. A value nobody asked for is an error at the next call.
    pub fn next_arg(&mut self) -> Result<Option<String>, ToolError> {
        if let Some(v) = self.inline.take() {
            let name = &self.args[self.i - 1];
            return Err(usage(format!("option '{name}' takes no value (got '{v}')")));
        }
        let Some(a) = self.args.get(self.i).cloned() else {
            return Ok(None);
        };
        self.i += 1;
        if a.starts_with("--")
            && let Some((name, v)) = a.split_once('=')
        {
            self.inline = Some(v.to_owned());
            return Ok(Some(name.to_owned()));
        }
        Ok(Some(a))
    }

    /// The value of option `name`: its `=value`, or the next argument.
    pub fn value(&mut self, name: &str) -> Result<String, ToolError> {
        if let Some(v) = self.inline.take() {
            return Ok(v);
        }
        let v = self
            .args
            .get(self.i)
            .cloned()
            .ok_or_else(|| usage(format!("option '{name}' needs a value")))?;
        self.i += 1;
        Ok(v)
    }

    /// The value of option `name`, parsed; `what` says what was expected.
    pub fn parsed<T: FromStr>(&mut self, name: &str, what: &str) -> Result<T, ToolError> {
        let v = self.value(name)?;
        v.trim()
            .parse()
            .map_err(|_| usage(format!("bad value for {name}: '{v}' (expected {what})")))
    }

    /// A comma-separated list value (`--backends a,b`), empty items dropped.
    pub fn list(&mut self, name: &str) -> Result<Vec<String>, ToolError> {
        let v = self.value(name)?;
        let items: Vec<String> = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if items.is_empty() {
            return Err(usage(format!("option '{name}' needs a non-empty list")));
        }
        Ok(items)
    }

    /// Everything not read yet (a script and its arguments).
    pub fn rest(&mut self) -> Vec<String> {
        let r = self.args[self.i..].to_vec();
        self.i = self.args.len();
        r
    }
}

/// Checks that every name in `given` is in `known`.
pub fn check_names(what: &str, given: &[String], known: &[String]) -> Result<(), ToolError> {
    for g in given {
        if !known.contains(g) {
            return Err(usage(format!(
                "unknown {what} '{g}' (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Parser {
        Parser::new(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn values_inline_and_separate() {
        let mut a = p(&["--runs=3", "--scale", "0.5", "--json", "x.lua", "1"]);
        assert_eq!(a.next_arg().unwrap().as_deref(), Some("--runs"));
        assert_eq!(a.parsed::<usize>("--runs", "n").unwrap(), 3);
        assert_eq!(a.next_arg().unwrap().as_deref(), Some("--scale"));
        assert_eq!(a.parsed::<f64>("--scale", "f").unwrap(), 0.5);
        assert_eq!(a.next_arg().unwrap().as_deref(), Some("--json"));
        assert_eq!(a.next_arg().unwrap().as_deref(), Some("x.lua"));
        assert_eq!(a.rest(), vec!["1".to_string()]);
        assert_eq!(a.next_arg().unwrap(), None);
    }

    #[test]
    fn errors_name_the_option() {
        let mut a = p(&["--runs", "x"]);
        a.next_arg().unwrap();
        let e = a.parsed::<usize>("--runs", "a count").unwrap_err();
        assert!(e.to_string().contains("--runs"), "{e}");
        let mut a = p(&["--json=1"]);
        a.next_arg().unwrap();
        assert!(a.next_arg().is_err());
        let mut a = p(&["--backends", ","]);
        a.next_arg().unwrap();
        assert!(a.list("--backends").is_err());
    }
}
