//! Compile tests: what `#[flext_monitor]` accepts (ui/pass) and the errors it gives (ui/fail,
//! one failure per file, expected output in the `.stderr` beside it).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
