//! A reader of the Prometheus / OpenMetrics text exposition, enough for tests: every sample's
//! name, labels and value.

use std::collections::BTreeMap;

/// The samples of one exposition.
#[derive(Debug)]
pub struct Exposition {
    samples: Vec<Sample>,
}

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Exposition {
    /// Reads `text`; panics on a line that is not a comment, blank, or a sample.
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}")))
            .collect();
        Self { samples }
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|sample| sample.name == name && sample.labels == wanted)
            .map(|sample| sample.value)
    }

    /// Like [`get`](Self::get), but panics (showing what there is) if the sample is missing.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            let similar: Vec<_> = self.samples.iter().filter(|s| s.name == name).collect();
            panic!("no sample {name}{labels:?}; samples of that name: {similar:?}")
        })
    }
}

/// `name{key="value",...} value` or `name value` (an exemplar or timestamp after the value
/// is ignored).
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (at, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &inner[at + 1..];
                    break;
                }
                ',' => {}
                '=' => {
                    let (_, '"') = chars.next()? else {
                        return None;
                    };
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                escaped => value.push(escaped),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        value => value.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_their_labels() {
        let text = "# TYPE a counter\na_total 3\nb{x=\"1\",y=\"q\\\"uote\"} 2.5\n# EOF\n";
        let exposition = Exposition::parse(text);
        assert_eq!(exposition.get("a_total", &[]), Some(3.0));
        assert_eq!(
            exposition.get("b", &[("y", "q\"uote"), ("x", "1")]),
            Some(2.5)
        );
        assert_eq!(exposition.get("b", &[("x", "1")]), None);
    }
}
