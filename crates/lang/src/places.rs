//! The administrative map: region → cercle → commune, as versioned data.
//!
//! `workflows/places.yaml` lists the places the programme works in. A place is
//! addressed by its path of ids (`mopti`, `mopti/koro`, `mopti/koro/dinangourou`);
//! a place *contains* itself and every place below it. The map changed in 2023
//! and may change again, so the file carries a `version` that travels with every
//! definition loaded against it; nothing in code knows a place by name.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::yaml::{self, Parsed};
use palabre_core::diagnostic::Diagnostics;

/// `places.yaml`: the administrative map the workflows refer to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacesFile {
    /// Which edition of the map this is (e.g. `"2023"` for the 2023 reorganisation).
    pub version: String,
    /// Where the map comes from (law, decree, survey), for the people who maintain it.
    #[serde(default)]
    pub source: Option<String>,
    /// The regions, each with its cercles and communes.
    pub regions: Vec<RegionEntry>,
}

/// A region and the cercles it holds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionEntry {
    /// Lower-case id used in paths (`mopti`).
    pub id: String,
    /// The name people use (`Mopti`).
    pub name: String,
    /// The cercles of this region.
    #[serde(default)]
    pub cercles: Vec<CercleEntry>,
}

/// A cercle and the communes it holds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CercleEntry {
    /// Lower-case id, unique within its region (`djenne`).
    pub id: String,
    /// The name people use (`Djenné`).
    pub name: String,
    /// The communes of this cercle that the programme works in.
    #[serde(default)]
    pub communes: Vec<CommuneEntry>,
}

/// A commune.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommuneEntry {
    /// Lower-case id, unique within its cercle (`fakala`).
    pub id: String,
    /// The name people use (`Fakala`).
    pub name: String,
}

/// The level of a place in the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Region,
    Cercle,
    Commune,
}

/// One place of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Place {
    pub path: String,
    pub name: String,
    pub level: Level,
}

/// The loaded map, indexed by path.
#[derive(Debug, Clone, Default)]
pub struct Places {
    version: String,
    by_path: BTreeMap<String, Place>,
}

/// Whether `id` is a valid path segment: lower-case ASCII letters, digits and dashes.
pub fn is_slug(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

impl Places {
    /// Loads `places.yaml`, reporting every problem in it.
    pub fn load(file: &Path, diagnostics: &mut Diagnostics) -> Places {
        match yaml::parse_file::<PlacesFile>(file) {
            Ok(parsed) => Places::from_parsed(file, &parsed, diagnostics),
            Err(d) => {
                diagnostics.push(*d);
                Places::default()
            }
        }
    }

    fn from_parsed(
        file: &Path,
        parsed: &Parsed<PlacesFile>,
        diagnostics: &mut Diagnostics,
    ) -> Places {
        let mut places = Places {
            version: parsed.value.version.clone(),
            by_path: BTreeMap::new(),
        };
        let mut add = |yaml_path: String, path: String, id: &str, name: &str, level: Level| {
            let problem = if !is_slug(id) {
                format!("place id '{id}' must be lower-case letters, digits and dashes")
            } else {
                match places.by_path.entry(path.clone()) {
                    std::collections::btree_map::Entry::Occupied(_) => {
                        format!("place '{path}' is defined twice")
                    }
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(Place {
                            path,
                            name: name.to_owned(),
                            level,
                        });
                        return;
                    }
                }
            };
            diagnostics.push(yaml::problem(
                file,
                &parsed.text,
                parsed.map.value(&yaml_path),
                problem,
            ));
        };
        for (r, region) in parsed.value.regions.iter().enumerate() {
            let region_path = region.id.clone();
            add(
                format!("regions[{r}].id"),
                region_path.clone(),
                &region.id,
                &region.name,
                Level::Region,
            );
            for (c, cercle) in region.cercles.iter().enumerate() {
                let cercle_path = format!("{region_path}/{}", cercle.id);
                add(
                    format!("regions[{r}].cercles[{c}].id"),
                    cercle_path.clone(),
                    &cercle.id,
                    &cercle.name,
                    Level::Cercle,
                );
                for (m, commune) in cercle.communes.iter().enumerate() {
                    add(
                        format!("regions[{r}].cercles[{c}].communes[{m}].id"),
                        format!("{cercle_path}/{}", commune.id),
                        &commune.id,
                        &commune.name,
                        Level::Commune,
                    );
                }
            }
        }
        places
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn get(&self, path: &str) -> Option<&Place> {
        self.by_path.get(path)
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.by_path.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Place> {
        self.by_path.values()
    }

    /// The place above `place` (`mopti/djenne` above `mopti/djenne/fakala`),
    /// `None` for a region.
    pub fn parent(place: &str) -> Option<&str> {
        place.rsplit_once('/').map(|(up, _)| up)
    }

    /// `place`, then each place above it up to its region: `mopti/djenne/fakala`,
    /// `mopti/djenne`, `mopti`. Nothing for the national level (`""`).
    pub fn upwards(place: &str) -> impl Iterator<Item = &str> {
        std::iter::successors(Some(place).filter(|p| !p.is_empty()), |p| Places::parent(p))
    }

    /// Whether `place` is `ancestor` or lies below it.
    pub fn contains(ancestor: &str, place: &str) -> bool {
        place == ancestor
            || (place.len() > ancestor.len()
                && place.starts_with(ancestor)
                && place.as_bytes()[ancestor.len()] == b'/')
    }

    /// `"unknown place 'x' (did you mean 'y'?)"`.
    pub fn unknown_message(&self, path: &str) -> String {
        format!(
            "unknown place '{path}'{}; places are written region/cercle/commune, as in places.yaml",
            palabre_core::suggest::did_you_mean(path, self.paths())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_respects_path_segments() {
        assert!(Places::contains("mopti", "mopti/koro/koro"));
        assert!(Places::contains("mopti/koro", "mopti/koro"));
        assert!(!Places::contains("mopti/koro", "mopti/korokoro"));
        assert!(!Places::contains("mopti/koro/koro", "mopti/koro"));
    }

    #[test]
    fn a_place_and_those_above_it() {
        assert_eq!(
            Places::upwards("mopti/djenne/fakala").collect::<Vec<_>>(),
            ["mopti/djenne/fakala", "mopti/djenne", "mopti"]
        );
        assert_eq!(Places::upwards("mopti").collect::<Vec<_>>(), ["mopti"]);
        assert_eq!(Places::upwards("").count(), 0);
        assert_eq!(Places::parent("mopti/djenne"), Some("mopti"));
        assert_eq!(Places::parent("mopti"), None);
    }

    #[test]
    fn slugs() {
        assert!(is_slug("pelengana"));
        assert!(is_slug("c-0042"));
        assert!(!is_slug("Djenné"));
        assert!(!is_slug(""));
        assert!(!is_slug("-x"));
        assert!(!is_slug("a/b"));
    }
}
