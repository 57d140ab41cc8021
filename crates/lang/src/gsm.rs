//! Look-alike letters: what a French or Bambara text becomes in the GSM-7
//! alphabet, for the `sms_gsm` template filter and for reading reply words.

/// Replaces the letters outside the GSM 03.38 alphabet that French (and the
/// Latin transcriptions of Bambara and Fulfulde) use most by their closest GSM
/// letters, so that a text stays readable in the cheaper encoding. Letters with no
/// close match are left as they are.
pub fn to_gsm_lookalikes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'â' | 'á' => 'a',
            'À' | 'Â' | 'Á' => 'A',
            'ç' => 'c',
            'ê' | 'ë' => 'e',
            'È' | 'Ê' | 'Ë' => 'E',
            'î' | 'ï' | 'í' => 'i',
            'Î' | 'Ï' => 'I',
            'ô' | 'ó' => 'o',
            'Ô' => 'O',
            'û' | 'ú' => 'u',
            'Û' | 'Ù' => 'U',
            'ŷ' | 'ÿ' => 'y',
            'ɛ' => 'e',
            'Ɛ' => 'E',
            'ɔ' => 'o',
            'Ɔ' => 'O',
            'ɲ' => 'n',
            'ŋ' => 'n',
            '’' | '‘' | 'ʼ' => '\'',
            '«' | '»' | '“' | '”' => '"',
            '–' | '—' => '-',
            '\u{a0}' | '\u{202f}' => ' ',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::to_gsm_lookalikes;

    #[test]
    fn gsm_lookalikes_keep_the_gsm_accents() {
        assert_eq!(
            to_gsm_lookalikes("Fête à l’école de Ségou, ça ne tɛ kɛ pas"),
            "Fete à l'école de Ségou, ca ne te ke pas"
        );
    }
}
