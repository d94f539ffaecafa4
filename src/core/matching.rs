//! Which subscriptions an event goes to: Unleash's filter (`addon-service`), as the SQL
//! function `unleash_webhook._matches` has it too (replay uses that one; a #[pg_test] checks
//! that the two agree). Pure: no pgrx.

/// A subscription's filter, as stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub event_types: Vec<Option<String>>,
    pub projects: Vec<Option<String>>,
    pub environments: Vec<Option<String>>,
}

impl Filter {
    /// The event's type is listed; an event without a project (environment) passes the project
    /// (environment) filter, as does an empty filter or one whose first element is `*`;
    /// otherwise the event's project (environment) must be listed.
    pub fn matches(
        &self,
        event_type: Option<&str>,
        project: Option<&str>,
        environment: Option<&str>,
    ) -> bool {
        let Some(event_type) = event_type else {
            return false;
        };
        listed(&self.event_types, event_type)
            && passes(&self.projects, project)
            && passes(&self.environments, environment)
    }
}

fn listed(list: &[Option<String>], value: &str) -> bool {
    list.iter().any(|v| v.as_deref() == Some(value))
}

fn passes(list: &[Option<String>], value: Option<&str>) -> bool {
    match value {
        None | Some("") => true,
        Some(v) => list.is_empty() || list[0].as_deref() == Some("*") || listed(list, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| Some(s.to_string())).collect()
    }

    fn filter(types: &[&str], projects: &[&str], environments: &[&str]) -> Filter {
        Filter {
            event_types: list(types),
            projects: list(projects),
            environments: list(environments),
        }
    }

    #[test]
    fn unleash_filter_rules() {
        let f = filter(&["feature-created"], &["p1"], &["production"]);
        assert!(f.matches(Some("feature-created"), Some("p1"), Some("production")));
        assert!(!f.matches(Some("feature-updated"), Some("p1"), Some("production")));
        assert!(!f.matches(Some("feature-created"), Some("p2"), Some("production")));
        assert!(!f.matches(Some("feature-created"), Some("p1"), Some("dev")));
        // no project / environment on the event: passes that filter
        assert!(f.matches(Some("feature-created"), None, None));
        assert!(f.matches(Some("feature-created"), Some(""), Some("")));
        // an empty filter, or one starting with '*', lets everything through
        let open = filter(&["feature-created"], &[], &["*", "x"]);
        assert!(open.matches(Some("feature-created"), Some("any"), Some("thing")));
        // '*' counts only in first place
        let late_star = filter(&["feature-created"], &["x", "*"], &[]);
        assert!(!late_star.matches(Some("feature-created"), Some("p1"), None));
        // no type never matches; NULL elements match nothing
        assert!(!f.matches(None, Some("p1"), Some("production")));
        let nulls = Filter {
            event_types: vec![None, Some("a".into())],
            projects: vec![None],
            environments: vec![],
        };
        assert!(nulls.matches(Some("a"), None, Some("e")));
        assert!(!nulls.matches(Some("a"), Some("p"), None));
    }
}
