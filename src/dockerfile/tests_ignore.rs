//! `.dockerignore` reading and matching, on Docker's patternmatcher's own
//! cases and ours.

use super::error::Pos;
use super::ignore::*;

fn ignored(patterns: &str, path: &str) -> bool {
    Ignore::parse(patterns).unwrap().matches(path)
}

#[test]
fn reads_patterns_as_docker_does() {
    let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# comment\n! /inverted/abs/path\n!\n! ";
    let got: Vec<String> = read_patterns(text).into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"]);
    assert_eq!(read_patterns(" # not a comment")[0].1, "# not a comment");
    assert_eq!(read_patterns("a/../b/./c/")[0].1, "b/c");
    assert!(Ignore::parse("x\n!\n").is_err_and(|e| e.pos == Pos::new(2, 1)));
}

#[test]
fn globs_double_stars_and_parents() {
    assert!(ignored("*.md", "README.md"));
    assert!(!ignored("*.md", "docs/README.md"));
    assert!(ignored("**/*.md", "docs/deep/README.md"));
    assert!(ignored("**/*.md", "README.md"));
    assert!(ignored("**/node_modules", "node_modules"));
    assert!(ignored("**/node_modules", "a/b/node_modules/x/y"));
    assert!(ignored("target/**", "target/debug/x"));
    assert!(ignored("docs", "docs/a/b.txt"), "a parent directory matching ignores what is under it");
    assert!(ignored("a?c", "abc"));
    assert!(!ignored("a?c", "a/c"));
    assert!(ignored("[a-c]x", "bx"));
    assert!(ignored("a/**/b", "a/b"));
    assert!(ignored("a/**/b", "a/x/y/b"));
    assert!(ignored("f\\*", "f*"));
    assert!(!ignored("f\\*", "fx"));
    assert!(ignored("a.b", "a.b"));
    assert!(!ignored("a.b", "axb"));
}

#[test]
fn exceptions_and_order() {
    assert!(!ignored("*.md\n!README.md", "README.md"));
    assert!(ignored("*.md\n!README.md", "CHANGES.md"));
    assert!(ignored("*.md\n!README.md\nREADME*", "README.md"), "the last matching pattern wins");
    assert!(!ignored("docs\n!docs/keep.txt", "docs/keep.txt"));
    assert!(ignored("docs\n!docs/keep.txt", "docs/other.txt"));
    assert!(!ignored(".", "anything"));
    assert!(!ignored("x", "."));
}

#[test]
fn bad_patterns_are_errors() {
    assert!(Ignore::parse("ok\n[abc\n").is_err_and(|e| e.pos.line == 2 && e.message.contains("bad pattern")));
}

/// patternmatcher's own cases (a path or a parent of it matching).
#[test]
fn patternmatchers_cases() {
    let hit = [
        ("**", "file"),
        ("**", "file/"),
        ("**/", "file"),
        ("**/", "file/"),
        ("**", "/"),
        ("**/", "/"),
        ("**", "dir/file"),
        ("**/", "dir/file"),
        ("**", "dir/file/"),
        ("**/", "dir/file/"),
        ("**/**", "dir/file"),
        ("**/**", "dir/file/"),
        ("dir/**", "dir/file"),
        ("dir/**", "dir/file/"),
        ("dir/**", "dir/dir2/file"),
        ("dir/**", "dir/dir2/file/"),
        ("**/dir", "dir"),
        ("**/dir", "dir/file"),
        ("**/dir2/*", "dir/dir2/file"),
        ("**/dir2/*", "dir/dir2/file/"),
        ("**/dir2/**", "dir/dir2/dir3/file"),
        ("**/dir2/**", "dir/dir2/dir3/file/"),
        ("**file", "file"),
        ("**file", "dir/file"),
        ("**/file", "dir/file"),
        ("**file", "dir/dir/file"),
        ("**/file", "dir/dir/file"),
        ("**/file*", "dir/dir/file"),
        ("**/file*", "dir/dir/file.txt"),
        ("**/file*txt", "dir/dir/file.txt"),
        ("**/file*.txt", "dir/dir/file.txt"),
        ("**/file*.txt*", "dir/dir/file.txt"),
        ("**/**/*.txt", "dir/dir/file.txt"),
        ("**/*.txt", "file.txt"),
        ("**/**/*.txt", "file.txt"),
        ("a**/*.txt", "a/file.txt"),
        ("a**/*.txt", "a/dir/file.txt"),
        ("a**/*.txt", "a/dir/dir/file.txt"),
        ("a/*.txt", "a/file.txt"),
        ("a/*.txt**", "a/file.txt"),
        ("a[b-d]e", "ace"),
        ("a[^b-d]e", "aze"),
        (".*", ".foo"),
        ("abc.def", "abc.def"),
        ("abc?def", "abcZdef"),
        ("**/foo/bar", "foo/bar"),
        ("**/foo/bar", "dir/foo/bar"),
        ("**/foo/bar", "dir/dir2/foo/bar"),
        ("abc/**", "abc/def"),
        ("abc/**", "abc/def/ghi"),
        ("**/.foo", ".foo"),
        ("a(b)c/def", "a(b)c/def"),
        ("a.|)$(}+{bc", "a.|)$(}+{bc"),
        ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"),
        ("a\\\\", "a\\"),
        ("a\\*b", "a*b"),
        ("abc", "abc"),
        ("*", "abc"),
        ("*c", "abc"),
        ("a*", "a"),
        ("a*", "abc"),
        ("a*", "ab/c"),
        ("a*/b", "abc/b"),
        ("a*b*c*d*e*/f", "axbxcxdxe/f"),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f"),
        ("a*b?c*x", "abxbbxdbxebxczzx"),
        ("ab[c]", "abc"),
        ("ab[b-d]", "abc"),
        ("ab[^e-g]", "abc"),
        ("a?b", "a☺b"),
        ("a[^a]b", "a☺b"),
        ("[a-ζ]*", "α"),
        ("[\\]a]", "]"),
        ("[\\-]", "-"),
        ("[x\\-]", "x"),
        ("[x\\-]", "-"),
        ("[\\-x]", "x"),
        ("[\\-x]", "-"),
        ("*x", "xxx"),
    ];
    for (pattern, path) in hit {
        assert!(Ignore::from_patterns([pattern]).unwrap().matches(path), "{pattern} should match {path}");
    }
    let miss = [
        ("**/**/*.txt2", "dir/dir/file.txt"),
        ("a/*.txt", "a/dir/file.txt"),
        ("a[b-d]e", "ae"),
        ("a[b-d]e", "aae"),
        (".*", "foo"),
        ("abc.def", "abcdef"),
        ("abc.def", "abcZdef"),
        ("abc?def", "abcdef"),
        ("abc/**", "abc"),
        ("**/.foo", "bar.foo"),
        ("a(b)c/def", "a(b)c/xyz"),
        ("a*/b", "a/c/b"),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f"),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff"),
        ("a*b?c*x", "abxbbxdbxebxczzy"),
        ("ab[e-g]", "abc"),
        ("ab[^c]", "abc"),
        ("ab[^b-d]", "abc"),
        ("a\\*b", "ab"),
        ("a???b", "a☺b"),
        ("a[^a][^a][^a]b", "a☺b"),
        ("*[a-ζ]", "A"),
        ("a?b", "a/b"),
        ("a*b", "a/b"),
        ("[x\\-]", "z"),
        ("[\\-x]", "a"),
    ];
    for (pattern, path) in miss {
        assert!(!Ignore::from_patterns([pattern]).unwrap().matches(path), "{pattern} should not match {path}");
    }
    for bad in ["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "!"] {
        assert!(Ignore::from_patterns([bad]).is_err(), "{bad} is a bad pattern");
    }
    let multi = |patterns: &[&str], path| Ignore::from_patterns(patterns.iter().copied()).unwrap().matches(path);
    assert!(!multi(&["**", "!util/docker/web"], "util/docker/web/foo"));
    assert!(multi(&["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo"));
    assert!(!multi(&["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"));
    assert!(multi(&["!fileutils.go", "*.go"], "fileutils.go"));
    assert!(!multi(&["docs/", "!docs/README.md"], "docs/README.md"));
    assert!(!multi(&["docs/*", "!docs/README.md"], "docs/README.md"));
    assert!(!multi(&["*.go"], "."));
}

#[test]
fn go_clean() {
    assert_eq!(clean("a/b/../c/."), "a/c");
    assert_eq!(clean("../a"), "../a");
    assert_eq!(clean("/../a"), "/a");
    assert_eq!(clean("a/.."), ".");
    assert_eq!(clean("//a//b/"), "/a/b");
}

#[test]
fn a_dockerfiles_own_ignore_file_wins_over_the_contexts() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path();
    let df = ctx.join("app.Dockerfile");
    std::fs::write(&df, "FROM scratch\n").unwrap();
    assert_eq!(find(&df, ctx), None);
    std::fs::write(ctx.join(".dockerignore"), "*.log\n").unwrap();
    assert_eq!(find(&df, ctx), Some(ctx.join(".dockerignore")));
    std::fs::write(ctx.join("app.Dockerfile.dockerignore"), "secret\n").unwrap();
    assert_eq!(find(&df, ctx), Some(ctx.join("app.Dockerfile.dockerignore")));
    let ignore = load(&df, ctx).unwrap();
    assert!(ignore.matches("secret") && !ignore.matches("x.log"));
}

/// Odd patterns never panic: they compile and match, or are errors.
#[test]
fn no_pattern_panics() {
    let pieces = ["[", "]", "\\", "*", "**", "?", "!", "/", ".", "..", "-", "^", "é", "a", "#", " ", "\n", "$", "{"];
    let paths = ["a", "a/b", "é/x", ".", "a/../b", "[", "**"];
    let mut next = super::tests::xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = 1 + next(8);
        let text: String = (0..len).map(|_| pieces[next(pieces.len())]).collect();
        if let Ok(ignore) = Ignore::parse(&text) {
            for p in paths {
                let _ = ignore.matches(p);
            }
        }
    }
}
