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
    let place = group.place.as_deref().unwrap_or(default_place);
    directory.iter().filter(move |c| {
        group.contacts.contains(&c.id)
            || group
                .role
                .as_ref()
                .is_some_and(|role| c.roles.contains(role) && Places::contains(place, &c.place))
    })
}

/// Everyone `groups` reach (groups without a place look in `default_place`),
/// ordered by contact id, each once.
pub fn reach<'c>(
    groups: &[RecipientGroup],
    default_place: &str,
    directory: &'c [Contact],
) -> Vec<&'c Contact> {
    let mut found: Vec<&'c Contact> = groups
        .iter()
        .flat_map(|g| resolve_group(g, default_place, directory))
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found.dedup_by(|a, b| a.id == b.id);
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
