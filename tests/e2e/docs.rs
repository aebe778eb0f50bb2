//! The README and the reference in `docs/` stay true: every relative link leads to a file (and
//! heading) that exists, every TOML example passes `tessera check-config` on the real binary,
//! and the README's one-minute walk-through works as written against the shipped config.
//!
//! The rule for TOML examples (docs/src/development.md, "How the docs are checked"): each
//! ```` ```toml ```` block of README.md and docs/**/*.md is put on top of the shipped
//! `conf/tessera.toml` — a table of the example that holds keys of its own (`[store]`,
//! `[directory.corp]`) and every array of tables (`[[client]]`, `[[realm]]`, `[[policy]]`)
//! replaces the shipped one, a table of tables (`[provider]`) is merged into — and the result
//! must pass `check-config`. An example that names what only a real site has (a CA file, a
//! database host, a provider defined elsewhere) lists on the line before its fence the problems
//! `check-config` must report about exactly those, `<!-- check-config: expect "…" "…" -->`:
//! the command must report each of them and nothing else, so the rest of the example is
//! still checked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::util::{Server, run_cli};

/// The repository root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/.
fn doc_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() && !path.ends_with("book") {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![repo().join("README.md")];
    walk(&repo().join("docs"), &mut files);
    files
}

/// A fenced code block: the file, the line of its opening fence, its info string, its text and
/// the problems the line before it says `check-config` reports.
struct Block {
    file: PathBuf,
    line: usize,
    info: String,
    text: String,
    expect: Vec<String>,
}

/// The quoted strings of `<!-- check-config: expect "…" "…" -->`, when `line` is one.
fn expected_problems(line: &str) -> Vec<String> {
    let Some(rest) = line.trim().strip_prefix("<!-- check-config: expect") else {
        return vec![];
    };
    rest.trim_end_matches("-->")
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The fenced blocks of `path` (fences may be indented, as in list items).
fn blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = lines[i].len() - trimmed.len();
            let expect = i
                .checked_sub(1)
                .map(|p| expected_problems(lines[p]))
                .unwrap_or_default();
            let start = i;
            let mut body = String::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                body.push_str(lines[i].get(indent..).unwrap_or(lines[i].trim_start()));
                body.push('\n');
                i += 1;
            }
            out.push(Block {
                file: path.to_path_buf(),
                line: start + 1,
                info: info.trim().to_string(),
                text: body,
                expect,
            });
        }
        i += 1;
    }
    out
}

/// The text of `path` outside fenced blocks and inline code, line by line.
fn prose(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut fence = false;
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        // Drop inline code spans: `[[client]](…)` in backticks is no link.
        let mut kept = String::new();
        for (k, part) in line.split('`').enumerate() {
            if k % 2 == 0 {
                kept.push_str(part);
            }
        }
        out.push((n + 1, kept));
    }
    out
}

/// A heading's anchor as GitHub and mdbook make it: lower case, letters, digits, `-` and `_`
/// kept, spaces turned into `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of `path`'s headings.
fn anchors(path: &Path) -> HashSet<String> {
    prose_with_code(path)
        .into_iter()
        .filter_map(|line| {
            let rest = line.trim_start_matches('#');
            (rest.len() < line.len() && rest.starts_with(' ')).then(|| slug(rest))
        })
        .collect()
}

/// The lines of `path` outside fenced blocks, inline code kept (headings hold code).
fn prose_with_code(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut fence = false;
    let mut out = vec![];
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        } else if !fence {
            out.push(line.to_string());
        }
    }
    out
}

/// The targets of the Markdown links `[text](target)` on a line.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                out.push(after[..end].to_string());
                rest = &after[end..];
            }
            None => break,
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_readme_and_docs_leads_somewhere() {
    let mut broken = vec![];
    let mut checked = 0;
    for file in doc_files() {
        for (line, text) in prose(&file) {
            for target in link_targets(&text) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let dest = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                let place = format!("{}:{line}: {target}", file.display());
                if !dest.exists() {
                    broken.push(format!("{place}: no such file"));
                } else if let Some(anchor) = anchor
                    && !anchors(&dest).contains(anchor)
                {
                    broken.push(format!("{place}: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 20,
        "only {checked} links found: is the parser right?"
    );
}

/// The book's table of contents names every page, and every page is in it.
#[test]
fn the_book_lists_every_page_of_docs() {
    let src = repo().join("docs/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: HashSet<String> = summary.lines().flat_map(link_targets).collect();
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && name != "SUMMARY.md" {
            assert!(
                listed.contains(&name),
                "docs/src/SUMMARY.md does not list {name}"
            );
        }
    }
    assert!(repo().join("docs/book.toml").exists());
}

/// Puts `fragment` on top of `base`: a table holding only tables is merged into the shipped
/// one; any other value (a table with keys of its own, an array of tables) replaces it.
fn merge(base: &mut toml::Table, fragment: toml::Table) {
    for (key, value) in fragment {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(old)), toml::Value::Table(new))
                if new.values().all(toml::Value::is_table) =>
            {
                merge(old, new)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The shipped config with the dictionary path made absolute (the copy lives elsewhere).
fn shipped_config() -> toml::Table {
    let text = std::fs::read_to_string(repo().join("conf/tessera.toml")).unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    let server = table.get_mut("server").unwrap().as_table_mut().unwrap();
    server.insert(
        "dictionary".into(),
        repo()
            .join("dictionaries/dictionary")
            .display()
            .to_string()
            .into(),
    );
    table
}

/// A scratch copy of conf/ (config and users file) holding `config`: (dir, config path).
fn scratch_conf(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::copy(repo().join("conf/users.toml"), conf.join("users.toml")).unwrap();
    let path = conf.join("tessera.toml");
    std::fs::write(&path, config).unwrap();
    (dir, path)
}

#[test]
fn every_toml_example_in_the_readme_and_docs_passes_check_config() {
    let mut failures = vec![];
    let mut checked = vec![];
    for file in doc_files() {
        for block in blocks(&file).into_iter().filter(|b| b.info == "toml") {
            let place = format!("{}:{}", block.file.display(), block.line);
            let fragment: toml::Table = match toml::from_str(&block.text) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{place}: not valid TOML: {e}"));
                    continue;
                }
            };
            let mut config = shipped_config();
            merge(&mut config, fragment);
            let (_dir, path) = scratch_conf(&toml::to_string(&config).unwrap());
            let out = run_cli(&path, &["check-config"], "");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let problems: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with("tessera:"))
                .collect();
            let unexpected = problems
                .iter()
                .any(|p| !block.expect.iter().any(|e| p.contains(e.as_str())));
            let missing = block
                .expect
                .iter()
                .any(|e| !problems.iter().any(|p| p.contains(e.as_str())));
            if !unexpected && !missing && out.status.success() == block.expect.is_empty() {
                checked.push(format!(
                    "{place} ({} expected problems)",
                    block.expect.len()
                ));
            } else {
                failures.push(format!(
                    "{place}: check-config said (exit {:?}):\n{stderr}expected only: {:?}\n--- merged config:\n{}",
                    out.status.code(),
                    block.expect,
                    std::fs::read_to_string(&path).unwrap()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        checked.len() >= 15,
        "only {} examples checked: {checked:?}",
        checked.len()
    );
    eprintln!("checked:\n{}", checked.join("\n"));
}

/// The listen address, spool file, store and client the walk-through names are the shipped
/// config's.
fn assert_readme_names_the_shipped_values(readme: &str, shipped: &toml::Table) {
    let text = |path: &[&str]| -> String {
        let (first, rest) = path.split_first().unwrap();
        let mut value = &shipped[*first];
        for key in rest {
            value = &value[*key];
        }
        match value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    assert_eq!(text(&["server", "listen"]), r#"["127.0.0.1:1812"]"#);
    assert!(readme.contains("It listens on `127.0.0.1:1812`"));
    for channel in ["sms", "email"] {
        assert_eq!(
            text(&["provider", channel, "spool", "path"]),
            "../var/spool.log",
            "the README reads codes from var/spool.log"
        );
    }
    assert!(readme.contains("tail -1 var/spool.log"));
    assert_eq!(text(&["store", "path"]), "../var/tessera.db");
    assert!(readme.contains("tokens live in `var/tessera.db`"));
    let clients = shipped["client"].as_array().unwrap();
    assert!(
        clients
            .iter()
            .any(|c| c["address"].as_str() == Some("127.0.0.1")
                && c["secret"].as_str() == Some("testing123")),
        "the README's radclient uses 127.0.0.1 with secret testing123"
    );
    assert!(readme.contains("radclient -x 127.0.0.1 auth testing123"));
}

/// The README's walk-through, as written: the shipped config, alice's two rounds with
/// radclient, the code from the spool file, bob's e-mail, and the paths it names.
#[test]
fn the_readme_walk_through_works_on_the_shipped_config() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    // The paths and values the walk-through relies on are the shipped config's.
    for named in ["conf/tessera.toml", "conf/users.toml"] {
        assert!(readme.contains(named), "the README no longer names {named}");
        assert!(repo().join(named).exists(), "the README names {named}");
    }
    let shipped = shipped_config();
    assert_readme_names_the_shipped_values(&readme, &shipped);

    // Run it: the shipped config on a free port, its relative paths in a scratch copy.
    let mut config = shipped;
    config["server"].as_table_mut().unwrap().insert(
        "listen".into(),
        toml::Value::Array(vec!["127.0.0.1:0".into()]),
    );
    let (dir, path) = scratch_conf(&toml::to_string(&config).unwrap());
    let spool = dir.path().join("var/spool.log");
    let server = Server::start_in(dir, &path);
    let last_line = || {
        std::fs::read_to_string(&spool)
            .unwrap_or_default()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    };

    // Step 2: alice's first round is challenged, as the README's output shows.
    let first = server.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let message = first.get("Reply-Message").unwrap().to_string();
    assert!(
        readme.contains(&format!("Reply-Message = \"{message}\"")),
        "{message}"
    );
    let timeout = first.get("Session-Timeout").unwrap().to_string();
    assert!(
        readme.contains(&format!("Session-Timeout = {timeout}")),
        "{timeout}"
    );
    // Step 3: the code is the spool file's last word, in the README's format.
    let line = last_line();
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields[1..4], ["sms", "+4917012345678", "-"], "{line}");
    let code = fields[4].rsplit(' ').next().unwrap().to_string();
    let shown = fields[4].trim_end_matches(&code);
    assert!(readme.contains(&format!("-\t{shown}")), "{line}");
    // More to try, "Blocking": the first round again gets the same State, nothing is sent.
    let again = server.auth("alice", "wonderland", None);
    again.expect("Access-Challenge");
    assert_eq!(again.state(), first.state());
    let blocked = again.get("Reply-Message").unwrap();
    assert!(readme.contains(&format!("`{blocked}`")), "{blocked}");
    assert_eq!(last_line(), line, "nothing is sent again");
    // Step 4: the second round with the State is accepted.
    server
        .auth("alice", &code, Some(&first.state()))
        .expect("Access-Accept");
    // More to try: the replay is rejected; bob's code goes "by e-mail" to the spool file, and
    // "one field" (password followed by the code, no State) logs him in.
    server
        .auth("alice", &code, Some(&first.state()))
        .expect("Access-Reject");
    server
        .auth("bob", "builder", None)
        .expect("Access-Challenge");
    let mail = last_line();
    assert!(mail.contains("\temail\tbob@example.org\t"), "{mail}");
    let code = mail.rsplit(' ').next().unwrap();
    server
        .auth("bob", &format!("builder{code}"), None)
        .expect("Access-Accept");
}

/// The commands of `text` that start with `program ` (with the lines a trailing backslash
/// continues), joined into one shell script.
fn commands_starting_with(text: &str, program: &str) -> String {
    let mut script = String::new();
    let mut continued = false;
    for line in text.lines() {
        if continued || line.starts_with(program) {
            script.push_str(line);
            script.push('\n');
            continued = line.ends_with('\\');
        }
    }
    script
}

/// The README's "Several nodes" try-out: its `sed` commands, run as written on the shipped
/// config, make two nodes that share one PostgreSQL; round 1 on A and round 2 on B is
/// accepted, and the code is spent on both.
#[test]
fn the_readme_several_nodes_try_out_makes_two_nodes_that_share_logins() {
    use testkit::postgres::{PASSWORD, Postgres};

    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## Several nodes\n")
        .nth(1)
        .expect("the README has a section \"Several nodes\"");
    let section = section.split("\n## ").next().unwrap_or(section);
    let script = commands_starting_with(section, "sed ");
    assert_eq!(script.matches("sed ").count(), 2, "{script}");
    for round in [
        "radclient -x 127.0.0.1:1812 auth",
        "radclient -x 127.0.0.1:1822 auth",
    ] {
        assert!(section.contains(round), "the try-out sends {round}");
    }
    // A password file others can read is refused: the README makes it private.
    assert!(section.contains("(umask 077; echo tessera-demo > var/pg.password)"));

    // A scratch copy of the repository's layout: conf/, var/ and the dictionaries.
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(root.path().join("var")).unwrap();
    for file in ["tessera.toml", "users.toml"] {
        std::fs::copy(repo().join("conf").join(file), conf.join(file)).unwrap();
    }
    std::os::unix::fs::symlink(
        repo().join("dictionaries"),
        root.path().join("dictionaries"),
    )
    .unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(root.path())
        .output()
        .expect("run sh");
    assert!(out.status.success(), "{script}: {out:?}");

    // The test's own cluster stands in for Debian's: its port, its password, free RADIUS ports.
    let pg = Postgres::start_new();
    let port = pg
        .url()
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("port in the URL")
        .to_string();
    crate::util::write_private(root.path().join("var/pg.password"), format!("{PASSWORD}\n"));
    for (node, listen) in [
        ("node-a.toml", "127.0.0.1:1812"),
        ("node-b.toml", "127.0.0.1:1822"),
    ] {
        let path = conf.join(node);
        let text = std::fs::read_to_string(&path).unwrap();
        let url = "postgresql://tessera@127.0.0.1/tessera?";
        assert!(
            text.contains("backend = \"postgresql\"") && text.contains(url),
            "{text}"
        );
        assert!(text.contains(listen), "{node} listens on {listen}: {text}");
        assert_eq!(text.contains(":1823\"]"), node == "node-b.toml", "{text}");
        let text = text
            .replace(
                url,
                &format!("postgresql://tessera@127.0.0.1:{port}/tessera?"),
            )
            .replace(listen, "127.0.0.1:0")
            .replace("127.0.0.1:1823", "127.0.0.1:0");
        std::fs::write(&path, text).unwrap();
    }
    let spool = root.path().join("var/spool.log");
    let a = Server::start_in(root, &conf.join("node-a.toml"));
    let b = Server::start_in(tempfile::tempdir().unwrap(), &conf.join("node-b.toml"));

    let first = a.auth("alice", "wonderland", None);
    first.expect("Access-Challenge");
    let text = std::fs::read_to_string(&spool).unwrap();
    let code = text
        .split_whitespace()
        .last()
        .expect("a code in var/spool.log");
    b.auth("alice", code, Some(&first.state()))
        .expect("Access-Accept");
    a.auth("alice", code, Some(&first.state()))
        .expect("Access-Reject");
}
