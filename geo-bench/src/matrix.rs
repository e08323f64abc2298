//! Region round-trip matrices (EVALUATION.md, "Regions and round-trip
//! times"): loading, validation, one-way delays and the latency floor.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The 3-region matrix of the Gryff paper (CA, VA, IR), shipped as a default.
pub const REGIONS_3: &str = include_str!("../regions/regions-3.toml");
/// The 5-region matrix of the Gryff paper (CA, VA, IR, OR, JP).
pub const REGIONS_5: &str = include_str!("../regions/regions-5.toml");

/// A matrix that could not be used, naming where it came from.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MatrixError {
    #[error("{source_name}: cannot read: {message}")]
    Io {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: not valid TOML for a region matrix: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: needs at least 1 region in `regions`")]
    NoRegions { source_name: String },
    #[error("{source_name}: region {region:?} is listed twice in `regions`")]
    DuplicateRegion { source_name: String, region: String },
    #[error("{source_name}: rtt_ms has no entry for the pair {a} -> {b}")]
    MissingPair {
        source_name: String,
        a: String,
        b: String,
    },
    #[error("{source_name}: rtt_ms.{a}.{b} = {value} is not a finite number >= 0")]
    BadRtt {
        source_name: String,
        a: String,
        b: String,
        value: f64,
    },
    #[error(
        "{source_name}: rtt_ms.{a}.{b} = {ab} but rtt_ms.{b}.{a} = {ba}; round trips must be symmetric"
    )]
    Asymmetric {
        source_name: String,
        a: String,
        b: String,
        ab: f64,
        ba: f64,
    },
    #[error("{source_name}: rtt_ms names region {region:?}, which is not in `regions`")]
    UnknownRegion { source_name: String, region: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    regions: Vec<String>,
    #[serde(default)]
    names: BTreeMap<String, String>,
    rtt_ms: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Regions and the round-trip time between every pair, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionMatrix {
    regions: Vec<String>,
    names: BTreeMap<String, String>,
    rtt_ms: Vec<Vec<f64>>,
}

impl RegionMatrix {
    /// Reads and validates a matrix file.
    pub fn load(path: &Path) -> Result<RegionMatrix, MatrixError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| MatrixError::Io {
            source_name: source_name.clone(),
            message: e.to_string(),
        })?;
        RegionMatrix::parse(&text, &source_name)
    }

    /// Parses and validates matrix text; `source_name` is used in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<RegionMatrix, MatrixError> {
        let src = || source_name.to_string();
        let file: MatrixFile = toml::from_str(text).map_err(|e| MatrixError::Parse {
            source_name: src(),
            message: e.to_string(),
        })?;
        if file.regions.is_empty() {
            return Err(MatrixError::NoRegions { source_name: src() });
        }
        for (i, r) in file.regions.iter().enumerate() {
            if file.regions[..i].contains(r) {
                return Err(MatrixError::DuplicateRegion {
                    source_name: src(),
                    region: r.clone(),
                });
            }
        }
        for (a, row) in &file.rtt_ms {
            for b in std::iter::once(a).chain(row.keys()) {
                if !file.regions.contains(b) {
                    return Err(MatrixError::UnknownRegion {
                        source_name: src(),
                        region: b.clone(),
                    });
                }
            }
        }
        let n = file.regions.len();
        let mut rtt_ms = vec![vec![0.0; n]; n];
        for (i, a) in file.regions.iter().enumerate() {
            for (j, b) in file.regions.iter().enumerate() {
                if i == j {
                    continue;
                }
                let get = |x: &String, y: &String| file.rtt_ms.get(x).and_then(|r| r.get(y));
                let ab = *get(a, b).ok_or_else(|| MatrixError::MissingPair {
                    source_name: src(),
                    a: a.clone(),
                    b: b.clone(),
                })?;
                if !ab.is_finite() || ab < 0.0 {
                    return Err(MatrixError::BadRtt {
                        source_name: src(),
                        a: a.clone(),
                        b: b.clone(),
                        value: ab,
                    });
                }
                if let Some(&ba) = get(b, a)
                    && (ba - ab).abs() > 1e-9
                {
                    return Err(MatrixError::Asymmetric {
                        source_name: src(),
                        a: a.clone(),
                        b: b.clone(),
                        ab,
                        ba,
                    });
                }
                rtt_ms[i][j] = ab;
            }
        }
        Ok(RegionMatrix {
            regions: file.regions,
            names: file.names,
            rtt_ms,
        })
    }

    /// The default 3- or 5-region matrix of the paper.
    pub fn paper(regions: usize) -> Option<RegionMatrix> {
        let text = match regions {
            3 => REGIONS_3,
            5 => REGIONS_5,
            _ => return None,
        };
        Some(
            RegionMatrix::parse(text, &format!("regions-{regions}.toml"))
                .expect("shipped matrix is valid"),
        )
    }

    pub fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// Region codes in matrix order; replica `i` lives in region `i`.
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// The long name of a region, if the file gave one.
    pub fn name(&self, region: usize) -> &str {
        let code = &self.regions[region];
        self.names.get(code).map(String::as_str).unwrap_or(code)
    }

    pub fn rtt_ms(&self, a: usize, b: usize) -> f64 {
        self.rtt_ms[a][b]
    }

    /// Half the round trip, in whole microseconds.
    pub fn one_way_us(&self, a: usize, b: usize) -> u64 {
        (self.rtt_ms[a][b] * 500.0).round() as u64
    }

    /// The other regions of `a`, nearest first (ties by index).
    pub fn peers_by_distance(&self, a: usize) -> Vec<usize> {
        let mut peers: Vec<usize> = (0..self.len()).filter(|&b| b != a).collect();
        peers.sort_by(|&x, &y| {
            self.rtt_ms[a][x]
                .total_cmp(&self.rtt_ms[a][y])
                .then(x.cmp(&y))
        });
        peers
    }

    /// One round trip to the nearest majority (the region plus its q-1
    /// nearest peers): the floor of any linearizable one-round operation.
    pub fn floor_ms(&self, a: usize) -> f64 {
        let q = self.len() / 2 + 1;
        match q {
            0 | 1 => 0.0,
            _ => self.rtt_ms[a][self.peers_by_distance(a)[q - 2]],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_floors_match_the_evaluation_tables() {
        let m5 = RegionMatrix::paper(5).unwrap();
        let floors: Vec<f64> = (0..5).map(|r| m5.floor_ms(r)).collect();
        assert_eq!(floors, vec![72.0, 88.0, 145.0, 93.0, 121.0]);
        let m3 = RegionMatrix::paper(3).unwrap();
        let floors: Vec<f64> = (0..3).map(|r| m3.floor_ms(r)).collect();
        assert_eq!(floors, vec![72.0, 72.0, 88.0]);
        assert_eq!(m5.one_way_us(0, 1), 36_000);
        assert_eq!(m5.name(4), "Japan");
    }

    #[test]
    fn a_missing_pair_is_named() {
        let text =
            "regions = [\"A\", \"B\", \"C\"]\n[rtt_ms]\nA = { B = 10, C = 20 }\nB = { A = 10 }\n";
        let err = RegionMatrix::parse(text, "m.toml").unwrap_err();
        assert_eq!(
            err,
            MatrixError::MissingPair {
                source_name: "m.toml".into(),
                a: "B".into(),
                b: "C".into()
            }
        );
        assert!(err.to_string().contains("B -> C"));
    }

    #[test]
    fn bad_matrices_get_their_own_errors() {
        let asym = "regions = [\"A\", \"B\"]\n[rtt_ms]\nA = { B = 10 }\nB = { A = 12 }\n";
        assert!(matches!(
            RegionMatrix::parse(asym, "x"),
            Err(MatrixError::Asymmetric { .. })
        ));
        let unknown = "regions = [\"A\", \"B\"]\n[rtt_ms]\nA = { B = 10, Z = 1 }\n";
        assert!(matches!(
            RegionMatrix::parse(unknown, "x"),
            Err(MatrixError::UnknownRegion { .. })
        ));
        let neg = "regions = [\"A\", \"B\"]\n[rtt_ms]\nA = { B = -1 }\n";
        assert!(matches!(
            RegionMatrix::parse(neg, "x"),
            Err(MatrixError::BadRtt { .. })
        ));
        assert!(matches!(
            RegionMatrix::parse("regions = [", "x"),
            Err(MatrixError::Parse { .. })
        ));
        let one_sided = "regions = [\"A\", \"B\"]\n[rtt_ms]\nA = { B = 10 }\n";
        assert!(matches!(
            RegionMatrix::parse(one_sided, "x"),
            Err(MatrixError::MissingPair { .. })
        ));
    }
}
