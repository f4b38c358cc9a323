//! Short import and export names for the SDK's wasm.
//!
//! wasm-bindgen names every import `__wbg_<name>_<16 hex digits>` from the
//! module `./sdk_bg.js`; over a hundred of them cost ~4 KB gzipped, in the
//! wasm and again in the glue. `wasm-opt --minify-imports-and-exports-and-modules`
//! renames them to one or two letters and prints the mapping as JSON; this
//! module applies that mapping to the glue so the two still agree.
//!
//! The SDK's JavaScript host (`sdk/js/host.js`) is a wasm-bindgen snippet:
//! imports that need no conversion come straight from its module
//! (`./snippets/<crate>/js/host.js`), others through a `./sdk_bg.js` shim.
//! binaryen moves every import into the one module `a`, so the snippet's
//! functions join the glue's import object there under their new names.

use crate::Result;
use std::collections::HashMap;

/// The module every import comes from after minification (binaryen names
/// modules `a`, `b`, … and wasm-bindgen's glue has exactly one).
const MODULE: &str = "a";

/// The renames binaryen printed.
#[derive(Debug, Default, PartialEq)]
pub struct Renames {
    /// The original import module (`./sdk_bg.js`).
    pub module: String,
    pub imports: HashMap<String, String>,
    /// Imports straight from a snippet module: (module, name, new name).
    pub snippets: Vec<(String, String, String)>,
    pub exports: HashMap<String, String>,
}

/// Parse binaryen's mapping:
/// `{"imports": [[module, name, new], …], "exports": [[name, new], …]}`.
pub fn parse(mapping: &str) -> Result<Renames> {
    let v: serde_json::Value = serde_json::from_str(mapping)
        .map_err(|e| format!("wasm-opt's name mapping is not JSON: {e}"))?;
    let rows = |key: &str| -> Result<Vec<Vec<String>>> {
        v.get(key)
            .and_then(|r| r.as_array())
            .ok_or_else(|| format!("wasm-opt's name mapping has no `{key}`"))?
            .iter()
            .map(|row| {
                row.as_array()
                    .map(|cells| {
                        cells
                            .iter()
                            .filter_map(|c| c.as_str().map(str::to_owned))
                            .collect()
                    })
                    .ok_or_else(|| format!("wasm-opt's name mapping: bad row {row}"))
            })
            .collect()
    };
    let mut renames = Renames::default();
    for row in rows("imports")? {
        let [module, name, new] = <[String; 3]>::try_from(row)
            .map_err(|r| format!("wasm-opt's name mapping: bad import {r:?}"))?;
        if module.starts_with("./snippets/") {
            renames.snippets.push((module, name, new));
            continue;
        }
        if !renames.module.is_empty() && renames.module != module {
            return Err(format!(
                "the SDK imports from two modules ({} and {module}); the glue rewrite expects one",
                renames.module
            ));
        }
        renames.module = module;
        renames.imports.insert(name, new);
    }
    for row in rows("exports")? {
        let [name, new] = <[String; 2]>::try_from(row)
            .map_err(|r| format!("wasm-opt's name mapping: bad export {r:?}"))?;
        renames.exports.insert(name, new);
    }
    Ok(renames)
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// Rewrite wasm-bindgen's glue to the new names: import names wherever they
/// appear as whole identifiers (they are unique `__wbg_…`/`__wbindgen_…`
/// names), export names only as `wasm.<name>` (public ones such as `track`
/// are also the glue's own function names), and the module key.
pub fn rewrite_glue(glue: &str, r: &Renames) -> Result<String> {
    let quoted = format!("\"{}\"", r.module);
    if !glue.contains(&quoted) {
        return Err(format!("the glue does not name the module {quoted}"));
    }
    let mut glue = glue.replace(&quoted, &format!("\"{MODULE}\""));
    if !r.snippets.is_empty() {
        glue = with_snippets_in_main_module(&glue, r)?;
    }
    let mut out = String::with_capacity(glue.len());
    let mut rest = glue.as_str();
    let mut seen = std::collections::HashSet::new();
    while let Some(start) = rest.find(is_ident) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let len = tail.find(|c| !is_ident(c)).unwrap_or(tail.len());
        let word = &tail[..len];
        let export = out
            .strip_suffix("wasm.")
            .is_some_and(|before| !before.ends_with(is_ident));
        let renamed = if export {
            r.exports.get(word)
        } else {
            r.imports.get(word).inspect(|_| {
                seen.insert(word.to_owned());
            })
        };
        if let Some(new) = renamed {
            out.push_str(new);
        } else {
            out.push_str(word);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    if let Some(missing) = r.imports.keys().find(|k| !seen.contains(*k)) {
        return Err(format!(
            "the glue does not define the wasm's import `{missing}`: wasm-bindgen's output changed"
        ));
    }
    Ok(out)
}

/// `"<snippet module>": importN,` entries of the import object become
/// `new: importN.name` members of the main module's object.
fn with_snippets_in_main_module(glue: &str, r: &Renames) -> Result<String> {
    let ident_after = |key: &str| -> Result<String> {
        let start = glue
            .find(key)
            .ok_or_else(|| format!("the glue does not name the module {key}"))?;
        Ok(glue[start + key.len()..]
            .chars()
            .take_while(|c| is_ident(*c))
            .collect())
    };
    let main = format!("\"{MODULE}\": ");
    let main_object = ident_after(&main)?;
    let mut members = Vec::new();
    for (module, name, new) in &r.snippets {
        let object = ident_after(&format!("\"{module}\": "))?;
        members.push(format!("{new}: {object}.{name}"));
    }
    let keys: Vec<String> = r
        .snippets
        .iter()
        .map(|(m, _, _)| format!("\"{m}\":"))
        .collect();
    let mut out: String = glue
        .split_inclusive('\n')
        .filter(|line| {
            !keys
                .iter()
                .any(|k| line.trim_start().starts_with(k.as_str()))
        })
        .collect();
    out = out.replacen(
        &format!("{main}{main_object}"),
        &format!(
            "{main}Object.assign({main_object}, {{ {} }})",
            members.join(", ")
        ),
        1,
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"{
 "imports": [
  ["./sdk_bg.js", "__wbg_location_7320782274fc691b", "A"],
  ["./sdk_bg.js", "__wbg_set_x_1", "$"]
 ],
"exports": [
  ["track", "ob"],
  ["memory", "_a"]
 ]
}"#;

    #[test]
    fn parses_binaryens_mapping() {
        let r = parse(MAPPING).expect("parses");
        assert_eq!(r.module, "./sdk_bg.js");
        assert_eq!(r.imports["__wbg_set_x_1"], "$");
        assert_eq!(r.exports["track"], "ob");
    }

    #[test]
    fn rewrites_imports_exports_and_module_but_not_public_names() {
        let r = parse(MAPPING).expect("parses");
        let glue = "export function track(a) { wasm.track(a); wasm.memory.buffer; }\n\
                    const import0 = { __wbg_location_7320782274fc691b: function(x) { return x.location }, \
                    __wbg_set_x_1: function() {} };\n\
                    return { \"./sdk_bg.js\": import0 };";
        let out = rewrite_glue(glue, &r).expect("rewrites");
        assert_eq!(
            out,
            "export function track(a) { wasm.ob(a); wasm._a.buffer; }\n\
             const import0 = { A: function(x) { return x.location }, \
             $: function() {} };\n\
             return { \"a\": import0 };"
        );
    }

    #[test]
    fn a_glue_without_the_imports_is_an_error() {
        let r = parse(MAPPING).expect("parses");
        assert!(rewrite_glue("return { \"./sdk_bg.js\": {} };", &r).is_err());
        assert!(rewrite_glue("no module here", &r).is_err());
    }

    #[test]
    fn snippet_imports_join_the_main_module() {
        let m = r#"{"imports": [["./sdk_bg.js", "__wbg_x_1", "A"], ["./snippets/c/js/host.js", "pageContext", "n"]], "exports": []}"#;
        let r = parse(m).expect("parses");
        let glue = "import * as import1 from \"./snippets/c/js/host.js\"\n\
                    const import0 = { __wbg_x_1: function() {} };\n\
                    return {\n\
                    \"./sdk_bg.js\": import0,\n\
                    \"./snippets/c/js/host.js\": import1,\n\
                    };";
        assert_eq!(
            rewrite_glue(glue, &r).expect("rewrites"),
            "import * as import1 from \"./snippets/c/js/host.js\"\n\
             const import0 = { A: function() {} };\n\
             return {\n\
             \"a\": Object.assign(import0, { n: import1.pageContext }),\n\
             };"
        );
    }

    #[test]
    fn two_modules_are_refused() {
        let m = r#"{"imports": [["m1", "x", "a"], ["m2", "y", "b"]], "exports": []}"#;
        assert!(parse(m).is_err());
    }
}
