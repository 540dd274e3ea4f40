//! An OpenAPI document, JSON or YAML, as the JSON value the api-schema policy embeds.
//!
//! YAML goes through serde_norway (the maintained serde_yaml fork `check` already reads Envoy
//! and Istio YAML with): aliases are expanded (with serde_norway's limit on expansion, so a
//! "billion laughs" document is an error, not a hang), `<<` merge keys are applied, and
//! whatever has no exact JSON equivalent is refused with its path rather than guessed: tags,
//! non-scalar or null keys, keys that collide once written as strings, NaN and infinities.

use serde::Deserialize;
use serde_json::{Map, Number, Value};
use serde_norway::Value as Yaml;

/// Read `text` as JSON when it is JSON (a `.json` file, or text that opens with `{`), else as
/// one YAML document.
pub fn parse(file: &str, text: &str) -> Result<Value, String> {
    let json = file.ends_with(".json")
        || (!file.ends_with(".yaml")
            && !file.ends_with(".yml")
            && text.trim_start().starts_with('{'));
    if json {
        return serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"));
    }
    let mut docs = serde_norway::Deserializer::from_str(text);
    let first = docs.next().ok_or("not YAML: the file holds no document")?;
    let mut doc = Yaml::deserialize(first).map_err(|e| format!("not YAML: {e}"))?;
    if docs.next().is_some() {
        return Err("not one YAML document: the file holds more than one (`---`)".into());
    }
    doc.apply_merge()
        .map_err(|e| format!("YAML merge key (`<<`): {e}"))?;
    to_json(doc, "")
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "the document".into()
    } else {
        path.to_string()
    }
}

/// A mapping key as the JSON member name it stands for (YAML reads `200:` as a number).
fn key(k: &Yaml, path: &str) -> Result<String, String> {
    match k {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        _ => Err(format!(
            "{}: a mapping key must be a string or number",
            at(path)
        )),
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Convert, naming the JSON path of anything JSON cannot hold.
pub fn to_json(v: Yaml, path: &str) -> Result<Value, String> {
    Ok(match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::String(s) => Value::String(s),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().and_then(Number::from_f64).ok_or_else(|| {
                    format!("{}: `{n}` is not a JSON number (NaN or infinite)", at(path))
                })?;
                Value::Number(f)
            }
        }
        Yaml::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let name = key(&k, path)?;
                let p = child(path, &name);
                let v = to_json(v, &p)?;
                if out.insert(name, v).is_some() {
                    return Err(format!("{p}: the key appears twice"));
                }
            }
            Value::Object(out)
        }
        Yaml::Tagged(t) => {
            return Err(format!(
                "{}: YAML tags (`{}`) have no JSON meaning and are not supported",
                at(path),
                t.tag
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Result<Value, String> {
        parse("spec.yaml", text)
    }

    #[test]
    fn yaml_1_2_scalars_and_numeric_keys_read_as_the_json_they_stand_for() {
        let v = yaml("openapi: 3.0.3\nresponses:\n  200: {description: ok}\n  '404': {}\nx: [1, 2.5, true, null, 'yes', yes]\n").unwrap();
        assert_eq!(
            v,
            json!({"openapi": "3.0.3", "responses": {"200": {"description": "ok"}, "404": {}},
                   "x": [1, 2.5, true, null, "yes", "yes"]})
        );
    }

    #[test]
    fn yaml_anchors_are_expanded_and_merge_keys_applied_explicit_keys_winning() {
        let v = yaml(
            "base: &b {type: string, maxLength: 5}\nuse: *b\nmerged:\n  <<: *b\n  maxLength: 9\n",
        )
        .unwrap();
        assert_eq!(v["use"], json!({"type": "string", "maxLength": 5}));
        assert_eq!(v["merged"], json!({"type": "string", "maxLength": 9}));
    }

    #[test]
    fn yaml_alias_bombs_are_refused_not_expanded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            text.push_str(&format!(
                "{n}: &{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = n;
        }
        let e = yaml(&text).unwrap_err();
        assert!(e.contains("repetition limit"), "{e}");
    }

    #[test]
    fn yaml_without_an_exact_json_meaning_is_refused_with_its_path() {
        let e = yaml("paths:\n  /a:\n    get: !custom {x: 1}\n").unwrap_err();
        assert!(e.starts_with("paths./a.get: YAML tags"), "{e}");
        let e = yaml("a:\n  ? [1, 2]\n  : x\n").unwrap_err();
        assert!(e.starts_with("a: a mapping key"), "{e}");
        let e = yaml("a:\n  200: x\n  '200': y\n").unwrap_err();
        assert_eq!(e, "a.200: the key appears twice");
        let e = yaml("a: .nan\n").unwrap_err();
        assert!(e.starts_with("a: `.nan` is not a JSON number"), "{e}");
        let e = yaml("a: 1\na: 2\n").unwrap_err();
        assert!(e.contains("duplicate entry"), "{e}");
        assert!(yaml("a: 1\n---\nb: 2\n")
            .unwrap_err()
            .contains("more than one"));
        assert!(yaml("a: [\n").unwrap_err().starts_with("not YAML"));
    }

    #[test]
    fn json_is_read_as_json() {
        assert_eq!(parse("spec.json", r#"{"a": 1}"#).unwrap(), json!({"a": 1}));
        assert_eq!(parse("spec", " {\"a\": 1}").unwrap(), json!({"a": 1}));
        assert!(parse("spec.json", "a: 1")
            .unwrap_err()
            .starts_with("not JSON"));
    }
}
