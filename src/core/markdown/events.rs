//! Unleash's tables that the formatter reads, copied from Unleash 8.1: `EVENT_MAP` (the
//! message and link of every known event type), the constraint operators' descriptions, and
//! the names every JavaScript object inherits.

pub(super) const FEATURE_ARCHIVED: &str = "feature-archived";
pub(super) const FEATURE_STRATEGY_UPDATE: &str = "feature-strategy-update";

/// The properties every object inherits from `Object.prototype` in Node (so `EVENT_MAP[type]`
/// finds something for these types, with no `action`).
pub(super) const OBJECT_PROTOTYPE_KEYS: [&str; 12] = [
    "constructor",
    "__defineGetter__",
    "__defineSetter__",
    "hasOwnProperty",
    "__lookupGetter__",
    "__lookupSetter__",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toString",
    "valueOf",
    "__proto__",
    "toLocaleString",
];

/// `constraintOperatorDescriptions`.
pub(super) const OPERATOR_DESCRIPTIONS: [(&str, &str); 18] = [
    ("IN", "is one of"),
    ("NOT_IN", "is not one of"),
    ("STR_CONTAINS", "is a string that contains"),
    ("STR_STARTS_WITH", "is a string that starts with"),
    ("STR_ENDS_WITH", "is a string that ends with"),
    ("NUM_EQ", "is a number equal to"),
    ("NUM_GT", "is a number greater than"),
    ("NUM_GTE", "is a number greater than or equal to"),
    ("NUM_LT", "is a number less than"),
    ("NUM_LTE", "is a number less than or equal to"),
    ("DATE_BEFORE", "is a date before"),
    ("DATE_AFTER", "is a date after"),
    ("SEMVER_EQ", "is a SemVer equal to"),
    ("SEMVER_GT", "is a SemVer greater than"),
    ("SEMVER_LT", "is a SemVer less than"),
    ("SEMVER_GTE", "is a SemVer greater than or equal to"),
    ("SEMVER_LTE", "is a SemVer less than or equal to"),
    ("REGEX", "matches regex"),
];

/// One entry of Unleash's `EVENT_MAP`: the event type (the value of its constant in
/// `src/lib/events/index.ts`), a label, and Mustache templates for the text and the link path.
pub(super) struct Entry {
    pub(super) event_type: &'static str,
    pub(super) label: &'static str,
    pub(super) action: &'static str,
    pub(super) path: &'static str,
}

/// `EVENT_MAP` of `feature-event-formatter-md-events.ts` (Unleash 8.1), in its order, the
/// templates verbatim.
pub(super) const EVENT_MAP: &[Entry] = &[
    Entry {
        event_type: "addon-config-created",
        label: "Integration configuration created",
        action: "{{b}}{{user}}{{b}} created a new {{b}}{{event.data.provider}}{{b}} integration configuration",
        path: "/integrations",
    },
    Entry {
        event_type: "addon-config-deleted",
        label: "Integration configuration deleted",
        action: "{{b}}{{user}}{{b}} deleted a {{b}}{{event.preData.provider}}{{b}} integration configuration",
        path: "/integrations",
    },
    Entry {
        event_type: "addon-config-updated",
        label: "Integration configuration updated",
        action: "{{b}}{{user}}{{b}} updated a {{b}}{{event.preData.provider}}{{b}} integration configuration",
        path: "/integrations",
    },
    Entry {
        event_type: "api-token-created",
        label: "API token created",
        action: "{{b}}{{user}}{{b}} created API token {{b}}{{event.data.username}}{{b}}",
        path: "/admin/api",
    },
    Entry {
        event_type: "api-token-deleted",
        label: "API token deleted",
        action: "{{b}}{{user}}{{b}} deleted API token {{b}}{{event.preData.username}}{{b}}",
        path: "/admin/api",
    },
    Entry {
        event_type: "change-added",
        label: "Change added",
        action: "{{b}}{{user}}{{b}} added a change to change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-discarded",
        label: "Change discarded",
        action: "{{b}}{{user}}{{b}} discarded a change in change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-edited",
        label: "Change edited",
        action: "{{b}}{{user}}{{b}} edited a change in change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-applied",
        label: "Change request applied",
        action: "{{b}}{{user}}{{b}} applied change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-approval-added",
        label: "Change request approval added",
        action: "{{b}}{{user}}{{b}} added an approval to change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-approved",
        label: "Change request approved",
        action: "{{b}}{{user}}{{b}} approved change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-cancelled",
        label: "Change request cancelled",
        action: "{{b}}{{user}}{{b}} cancelled change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-created",
        label: "Change request created",
        action: "{{b}}{{user}}{{b}} created change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-discarded",
        label: "Change request discarded",
        action: "{{b}}{{user}}{{b}} discarded change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-rejected",
        label: "Change request rejected",
        action: "{{b}}{{user}}{{b}} rejected change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-sent-to-review",
        label: "Change request sent to review",
        action: "{{b}}{{user}}{{b}} sent to review change request {{changeRequest}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-scheduled",
        label: "Change request scheduled",
        action: "{{b}}{{user}}{{b}} scheduled change request {{changeRequest}} to be applied at {{event.data.scheduledDate}}.",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-scheduled-application-success",
        label: "Scheduled change request applied successfully",
        action: "{{b}}Successfully{{b}} applied the scheduled change request {{changeRequest}} by {{b}}{{user}}{{b}}.",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-scheduled-application-failure",
        label: "Scheduled change request failed",
        action: "{{b}}Failed{{b}} to apply the scheduled change request {{changeRequest}} by {{b}}{{user}}{{b}}.",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "change-request-schedule-suspended",
        label: "Change request suspended",
        action: "Change request {{changeRequest}} was suspended for the following reason: {{event.data.reason}}",
        path: "/projects/{{event.project}}/change-requests/{{event.data.changeRequestId}}",
    },
    Entry {
        event_type: "context-field-created",
        label: "Context field created",
        action: "{{b}}{{user}}{{b}} created context field {{b}}{{event.data.name}}{{b}}",
        path: "/context",
    },
    Entry {
        event_type: "context-field-deleted",
        label: "Context field deleted",
        action: "{{b}}{{user}}{{b}} deleted context field {{b}}{{event.preData.name}}{{b}}",
        path: "/context",
    },
    Entry {
        event_type: "context-field-updated",
        label: "Context field updated",
        action: "{{b}}{{user}}{{b}} updated context field {{b}}{{event.preData.name}}{{b}}",
        path: "/context",
    },
    Entry {
        event_type: "feature-archived",
        label: "Flag archived",
        action: "{{b}}{{user}}{{b}} archived {{b}}{{event.featureName}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/archive",
    },
    Entry {
        event_type: "feature-created",
        label: "Flag created",
        action: "{{b}}{{user}}{{b}} created {{b}}{{feature}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-deleted",
        label: "Flag deleted",
        action: "{{b}}{{user}}{{b}} deleted {{b}}{{event.featureName}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}",
    },
    Entry {
        event_type: "feature-environment-disabled",
        label: "Flag disabled",
        action: "{{b}}{{user}}{{b}} disabled {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-environment-enabled",
        label: "Flag enabled",
        action: "{{b}}{{user}}{{b}} enabled {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-environment-variants-updated",
        label: "Flag variants updated",
        action: "{{b}}{{user}}{{b}} updated variants for {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}/variants",
    },
    Entry {
        event_type: "feature-metadata-updated",
        label: "Flag metadata updated",
        action: "{{b}}{{user}}{{b}} updated {{b}}{{feature}}{{b}} metadata in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-completed",
        label: "Flag marked as completed",
        action: "{{b}}{{feature}}{{b}} was marked as completed in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-potentially-stale-on",
        label: "Flag potentially stale",
        action: "{{b}}{{feature}}{{b}} was marked as potentially stale in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-project-change",
        label: "Flag moved to a new project",
        action: "{{b}}{{user}}{{b}} moved {{b}}{{feature}}{{b}} from {{b}}{{event.data.oldProject}}{{b}} to {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-revived",
        label: "Flag revived",
        action: "{{b}}{{user}}{{b}} revived {{b}}{{feature}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-stale-off",
        label: "Flag stale marking removed",
        action: "{{b}}{{user}}{{b}} removed the stale marking on {{b}}{{feature}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-stale-on",
        label: "Flag marked as stale",
        action: "{{b}}{{user}}{{b}} marked {{b}}{{feature}}{{b}} as stale in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-strategy-add",
        label: "Flag strategy added",
        action: "{{b}}{{user}}{{b}} added strategy {{b}}{{strategyTitle}}{{b}} to {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-strategy-remove",
        label: "Flag strategy removed",
        action: "{{b}}{{user}}{{b}} removed strategy {{b}}{{strategyTitle}}{{b}} from {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-strategy-update",
        label: "Flag strategy updated",
        action: "{{b}}{{user}}{{b}} updated {{b}}{{feature}}{{b}} in project {{b}}{{project}}{{b}} {{strategyChangeText}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-tagged",
        label: "Flag tagged",
        action: "{{b}}{{user}}{{b}} tagged {{b}}{{feature}}{{b}} with {{b}}{{event.data.type}}:{{event.data.value}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "feature-untagged",
        label: "Flag untagged",
        action: "{{b}}{{user}}{{b}} untagged {{b}}{{feature}}{{b}} with {{b}}{{event.preData.type}}:{{event.preData.value}}{{b}} in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "group-created",
        label: "Group created",
        action: "{{b}}{{user}}{{b}} created group {{b}}{{event.data.name}}{{b}}",
        path: "/admin/groups",
    },
    Entry {
        event_type: "group-deleted",
        label: "Group deleted",
        action: "{{b}}{{user}}{{b}} deleted group {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/groups",
    },
    Entry {
        event_type: "group-updated",
        label: "Group updated",
        action: "{{b}}{{user}}{{b}} updated group {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/groups",
    },
    Entry {
        event_type: "banner-created",
        label: "Banner created",
        action: "{{b}}{{user}}{{b}} created banner {{b}}{{event.data.message}}{{b}}",
        path: "/admin/message-banners",
    },
    Entry {
        event_type: "banner-deleted",
        label: "Banner deleted",
        action: "{{b}}{{user}}{{b}} deleted banner {{b}}{{event.preData.message}}{{b}}",
        path: "/admin/message-banners",
    },
    Entry {
        event_type: "banner-updated",
        label: "Banner updated",
        action: "{{b}}{{user}}{{b}} updated banner {{b}}{{event.preData.message}}{{b}}",
        path: "/admin/message-banners",
    },
    Entry {
        event_type: "project-created",
        label: "Project created",
        action: "{{b}}{{user}}{{b}} created project {{b}}{{project}}{{b}}",
        path: "/projects",
    },
    Entry {
        event_type: "project-archived",
        label: "Project archived",
        action: "{{b}}{{user}}{{b}} archived project {{b}}{{event.project}}{{b}}",
        path: "/projects-archive",
    },
    Entry {
        event_type: "project-deleted",
        label: "Project deleted",
        action: "{{b}}{{user}}{{b}} deleted project {{b}}{{event.project}}{{b}}",
        path: "/projects",
    },
    Entry {
        event_type: "segment-created",
        label: "Segment created",
        action: "{{b}}{{user}}{{b}} created segment {{b}}{{event.data.name}}{{b}}",
        path: "/segments",
    },
    Entry {
        event_type: "segment-deleted",
        label: "Segment deleted",
        action: "{{b}}{{user}}{{b}} deleted segment {{b}}{{event.preData.name}}{{b}}",
        path: "/segments",
    },
    Entry {
        event_type: "segment-updated",
        label: "Segment updated",
        action: "{{b}}{{user}}{{b}} updated segment {{b}}{{event.preData.name}}{{b}}",
        path: "/segments",
    },
    Entry {
        event_type: "service-account-created",
        label: "Service account created",
        action: "{{b}}{{user}}{{b}} created service account {{b}}{{event.data.name}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "service-account-token-created",
        label: "Service account token created",
        action: "{{b}}{{user}}{{b}} created a token for service account {{b}}{{event.data.ownerId}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "service-account-token-deleted",
        label: "Service account token deleted",
        action: "{{b}}{{user}}{{b}} deleted a token for service account {{b}}{{event.data.ownerId}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "service-account-deleted",
        label: "Service account deleted",
        action: "{{b}}{{user}}{{b}} deleted service account {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "service-account-updated",
        label: "Service account updated",
        action: "{{b}}{{user}}{{b}} updated service account {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/service-accounts",
    },
    Entry {
        event_type: "user-created",
        label: "User created",
        action: "{{b}}{{user}}{{b}} created user {{b}}{{event.data.name}}{{b}}",
        path: "/admin/users",
    },
    Entry {
        event_type: "user-deleted",
        label: "User deleted",
        action: "{{b}}{{user}}{{b}} deleted user {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/users",
    },
    Entry {
        event_type: "user-updated",
        label: "User updated",
        action: "{{b}}{{user}}{{b}} updated user {{b}}{{event.preData.name}}{{b}}",
        path: "/admin/users",
    },
    Entry {
        event_type: "release-plan-added",
        label: "Release plan added",
        action: "{{b}}{{user}}{{b}} added release plan {{b}}{{event.data.name}}{{b}} to {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "release-plan-removed",
        label: "Release plan removed",
        action: "{{b}}{{user}}{{b}} removed release plan {{b}}{{event.preData.name}}{{b}} from {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "release-plan-milestone-started",
        label: "Release plan milestone started",
        action: "{{b}}{{user}}{{b}} started milestone {{b}}{{event.data.milestoneName}}{{b}} in release plan {{b}}{{event.data.name}}{{b}} for {{b}}{{feature}}{{b}} for the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "release-plan-progressions-paused",
        label: "Release plan progressions paused",
        action: "{{b}}Release plan progressions paused{{b}} by safeguard for {{b}}{{feature}}{{b}} in the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "release-plan-progressions-resumed",
        label: "Release plan progressions resumed",
        action: "{{b}}{{user}}{{b}} resumed release plan progressions for {{b}}{{feature}}{{b}} in the {{b}}{{event.environment}}{{b}} environment in project {{b}}{{project}}{{b}}",
        path: "/projects/{{event.project}}/features/{{event.featureName}}",
    },
    Entry {
        event_type: "user-access-request-registered",
        label: "User access request registered",
        action: "{{b}}{{event.data.email}}{{b}} requested access to Unleash",
        path: "/admin/users",
    },
    Entry {
        event_type: "user-access-request-approved",
        label: "User access request approved",
        action: "{{b}}{{user}}{{b}} approved access request for {{b}}{{event.data.email}}{{b}}",
        path: "/admin/users",
    },
    Entry {
        event_type: "user-access-request-rejected",
        label: "User access request rejected",
        action: "{{b}}{{user}}{{b}} rejected access request for {{b}}{{event.data.email}}{{b}}",
        path: "/admin/users",
    },
];
