//! Who a step reaches and on which channel: recipient groups resolved against the
//! directory, and the channel choice per contact.

use palabre_core::channel::Channel;
use palabre_lang::contacts::Contact;
use palabre_lang::meeting::RecipientGroup;
use palabre_lang::places::Places;

/// Contacts reached by `group`; a group with no place looks in `default_place`.
pub fn resolve_group<'g, 'c>(
    group: &'g RecipientGroup,
    default_place: &'g str,
    directory: &'c [Contact],
) -> impl Iterator<Item = &'c Contact> + use<'g, 'c> {
    directory
        .iter()
        .filter(move |c| in_group(group, default_place, c))
}

/// Whether `group` reaches `contact` (a group with no place looks in `default_place`).
fn in_group(group: &RecipientGroup, default_place: &str, contact: &Contact) -> bool {
    let place = group.place.as_deref().unwrap_or(default_place);
    group.contacts.contains(&contact.id)
        || group.role.as_ref().is_some_and(|role| {
            contact.roles.contains(role) && Places::contains(place, &contact.place)
        })
}

/// Everyone `groups` reach (groups without a place look in `default_place`),
/// ordered by contact id, each once.
pub fn reach<'c>(
    groups: &[RecipientGroup],
    default_place: &str,
    directory: &'c [Contact],
) -> Vec<&'c Contact> {
    reach_indices(groups, default_place, directory)
        .into_iter()
        .map(|i| &directory[i])
        .collect()
}

/// [`reach`], as positions in `directory` (what a planner keeps to ask again).
pub fn reach_indices(
    groups: &[RecipientGroup],
    default_place: &str,
    directory: &[Contact],
) -> Vec<usize> {
    let mut found: Vec<usize> = directory
        .iter()
        .enumerate()
        .filter(|(_, c)| groups.iter().any(|g| in_group(g, default_place, c)))
        .map(|(i, _)| i)
        .collect();
    found.sort_by(|&a, &b| directory[a].id.cmp(&directory[b].id));
    found.dedup_by(|a, b| directory[*a].id == directory[*b].id);
    found
}

/// The channel a contact gets a step on: their first preference the step allows and
/// they have an address for, else the step's first channel they can be reached on.
pub fn choose_channel(contact: &Contact, allowed: &[Channel]) -> Option<Channel> {
    let reachable = |c: &Channel| allowed.contains(c) && contact.address(*c).is_some();
    contact
        .channels
        .iter()
        .copied()
        .find(reachable)
        .or_else(|| allowed.iter().copied().find(reachable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Channel::{Email, Sms};

    fn contact(id: &str, roles: &[&str], place: &str) -> Contact {
        Contact {
            id: id.to_owned(),
            name: format!("Person {id}"),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            place: place.to_owned(),
            phone: Some("+22376000000".to_owned()), // a fake number
            email: None,
            language: "fra".to_owned(),
            channels: vec![Sms],
        }
    }

    fn reachable(phone: bool, email: bool, channels: &[Channel]) -> Contact {
        Contact {
            phone: phone.then(|| "+22376451234".to_owned()), // a fake number
            email: email.then(|| "someone@example.org".to_owned()),
            channels: channels.to_vec(),
            ..contact("c-1", &["leader"], "mopti/koro")
        }
    }

    fn group(role: Option<&str>, place: Option<&str>, contacts: &[&str]) -> RecipientGroup {
        RecipientGroup {
            role: role.map(str::to_owned),
            place: place.map(str::to_owned),
            contacts: contacts.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn ids<'c>(contacts: impl IntoIterator<Item = &'c Contact>) -> Vec<&'c str> {
        contacts.into_iter().map(|c| c.id.as_str()).collect()
    }

    /// Shuffled on purpose, so that `reach`'s ordering by id shows.
    fn directory() -> Vec<Contact> {
        vec![
            contact("c-05", &["leader"], "mopti"),
            contact("c-03", &["leader"], "mopti/korokoro"),
            contact("c-02", &["leader"], "mopti/koro/bondo"),
            contact("c-06", &["leader", "mayor"], "segou/macina/macina"),
            contact("c-01", &["leader"], "mopti/koro"),
            contact("c-04", &["mayor"], "mopti/koro/koro"),
        ]
    }

    #[test]
    fn choose_channel_prefers_the_contacts_choice_then_the_steps_order() {
        const STEPS: [&[Channel]; 4] = [&[Sms], &[Email], &[Sms, Email], &[Email, Sms]];
        // (has phone, has email, preferences, expected for each of STEPS)
        type Case = (bool, bool, &'static [Channel], [Option<Channel>; 4]);
        let table: [Case; 16] = [
            // phone only: SMS whenever the step allows it, whatever they prefer
            (true, false, &[Sms], [Some(Sms), None, Some(Sms), Some(Sms)]),
            (
                true,
                false,
                &[Email],
                [Some(Sms), None, Some(Sms), Some(Sms)],
            ),
            (
                true,
                false,
                &[Email, Sms],
                [Some(Sms), None, Some(Sms), Some(Sms)],
            ),
            (true, false, &[], [Some(Sms), None, Some(Sms), Some(Sms)]),
            // email only
            (
                false,
                true,
                &[Sms],
                [None, Some(Email), Some(Email), Some(Email)],
            ),
            (
                false,
                true,
                &[Email],
                [None, Some(Email), Some(Email), Some(Email)],
            ),
            (
                false,
                true,
                &[Email, Sms],
                [None, Some(Email), Some(Email), Some(Email)],
            ),
            (
                false,
                true,
                &[],
                [None, Some(Email), Some(Email), Some(Email)],
            ),
            // both: the preference wins over the step's order when the step allows it
            (
                true,
                true,
                &[Sms],
                [Some(Sms), Some(Email), Some(Sms), Some(Sms)],
            ),
            (
                true,
                true,
                &[Email],
                [Some(Sms), Some(Email), Some(Email), Some(Email)],
            ),
            (
                true,
                true,
                &[Email, Sms],
                [Some(Sms), Some(Email), Some(Email), Some(Email)],
            ),
            // no preference: the step's first channel
            (
                true,
                true,
                &[],
                [Some(Sms), Some(Email), Some(Sms), Some(Email)],
            ),
            // no address at all
            (false, false, &[Sms], [None; 4]),
            (false, false, &[Email], [None; 4]),
            (false, false, &[Email, Sms], [None; 4]),
            (false, false, &[], [None; 4]),
        ];
        for (phone, email, preferences, expected) in table {
            let c = reachable(phone, email, preferences);
            for (allowed, want) in STEPS.iter().zip(expected) {
                assert_eq!(
                    choose_channel(&c, allowed),
                    want,
                    "phone {phone}, email {email}, preferences {preferences:?}, step allows {allowed:?}"
                );
            }
        }
    }

    #[test]
    fn choose_channel_never_picks_a_channel_the_step_does_not_allow() {
        for (phone, email) in [(true, false), (false, true), (true, true), (false, false)] {
            for preferences in [&[Sms][..], &[Email], &[Email, Sms], &[]] {
                let c = reachable(phone, email, preferences);
                assert_eq!(choose_channel(&c, &[]), None, "{c:?}");
            }
        }
    }

    #[test]
    fn resolve_group_by_contact_and_by_role_within_a_place() {
        let directory = directory();
        // (group, default place, expected ids in directory order)
        let table: Vec<(RecipientGroup, &str, Vec<&str>)> = vec![
            // the place and below it, not a sibling sharing its prefix, not above it
            (
                group(Some("leader"), Some("mopti/koro"), &[]),
                "segou",
                vec!["c-02", "c-01"],
            ),
            // no place: the default place
            (
                group(Some("leader"), None, &[]),
                "mopti/koro",
                vec!["c-02", "c-01"],
            ),
            (group(Some("leader"), None, &[]), "segou", vec!["c-06"]),
            // an explicit place wins over the default
            (
                group(Some("leader"), Some("mopti/korokoro"), &[]),
                "mopti/koro",
                vec!["c-03"],
            ),
            (
                group(Some("leader"), Some("mopti"), &[]),
                "segou",
                vec!["c-05", "c-03", "c-02", "c-01"],
            ),
            // a commune does not reach the cercle above it
            (
                group(Some("leader"), Some("mopti/koro/koro"), &[]),
                "mopti/koro",
                vec![],
            ),
            (
                group(Some("mayor"), Some("mopti/koro/koro"), &[]),
                "segou",
                vec!["c-04"],
            ),
            // by id, wherever the contact is
            (group(None, None, &["c-06"]), "mopti/koro", vec!["c-06"]),
            (
                group(None, Some("mopti/koro"), &["c-06"]),
                "mopti/koro",
                vec!["c-06"],
            ),
            // role and ids together: both
            (
                group(Some("mayor"), None, &["c-01"]),
                "mopti/koro",
                vec!["c-01", "c-04"],
            ),
            // nobody
            (group(Some("prefect"), None, &[]), "mopti", vec![]),
            (group(None, None, &["c-99"]), "mopti", vec![]),
            (group(None, Some("mopti"), &[]), "mopti", vec![]),
            (group(None, None, &[]), "mopti", vec![]),
        ];
        for (g, default_place, expected) in table {
            assert_eq!(
                ids(resolve_group(&g, default_place, &directory)),
                expected,
                "{g:?} with default place {default_place}"
            );
        }
    }

    #[test]
    fn reach_orders_by_id_and_lists_each_contact_once() {
        let directory = directory();
        // (groups, default place, expected ids)
        let table: Vec<(Vec<RecipientGroup>, &str, Vec<&str>)> = vec![
            (vec![], "mopti/koro", vec![]),
            (
                vec![group(Some("leader"), None, &[])],
                "mopti/koro",
                vec!["c-01", "c-02"],
            ),
            (
                vec![
                    group(Some("leader"), None, &[]),
                    group(Some("mayor"), None, &[]),
                ],
                "mopti/koro",
                vec!["c-01", "c-02", "c-04"],
            ),
            // the same group twice, overlapping groups, an id also reached by role
            (
                vec![
                    group(Some("leader"), None, &[]),
                    group(Some("leader"), None, &[]),
                ],
                "mopti/koro",
                vec!["c-01", "c-02"],
            ),
            (
                vec![
                    group(Some("leader"), Some("mopti"), &[]),
                    group(None, None, &["c-02", "c-06", "c-02"]),
                ],
                "mopti/koro",
                vec!["c-01", "c-02", "c-03", "c-05", "c-06"],
            ),
            // each group without a place looks in the default place
            (
                vec![
                    group(Some("mayor"), None, &[]),
                    group(Some("leader"), Some("mopti/korokoro"), &[]),
                ],
                "segou",
                vec!["c-03", "c-06"],
            ),
        ];
        for (groups, default_place, expected) in table {
            assert_eq!(
                ids(reach(&groups, default_place, &directory)),
                expected,
                "{groups:?} with default place {default_place}"
            );
        }
    }
}
