//! Brazilian tax ids with correct check digits, formatted as Omie shows them, so the demo data
//! looks like a real customer base (and would pass any document validation added later).

use rand::Rng;

/// The modulus-11 check digit shared by CPF and CNPJ: a remainder below 2 gives 0.
fn check_digit(digits: &[u8], weights: &[u32]) -> u8 {
    let sum: u32 = digits.iter().zip(weights).map(|(digit, weight)| u32::from(*digit) * weight).sum();
    let remainder = sum % 11;
    if remainder < 2 { 0 } else { (11 - remainder) as u8 }
}

/// The two check digits of a CPF whose first nine digits are `base`.
pub fn cpf_check_digits(base: &[u8; 9]) -> [u8; 2] {
    let first = check_digit(base, &[10, 9, 8, 7, 6, 5, 4, 3, 2]);
    let mut with_first = [0u8; 10];
    with_first[..9].copy_from_slice(base);
    with_first[9] = first;
    [first, check_digit(&with_first, &[11, 10, 9, 8, 7, 6, 5, 4, 3, 2])]
}

/// The two check digits of a CNPJ whose first twelve digits (root and branch) are `base`.
pub fn cnpj_check_digits(base: &[u8; 12]) -> [u8; 2] {
    let first = check_digit(base, &[5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]);
    let mut with_first = [0u8; 13];
    with_first[..12].copy_from_slice(base);
    with_first[12] = first;
    [first, check_digit(&with_first, &[6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])]
}

/// A valid CPF formatted `000.000.000-00`.
pub fn random_cpf(rng: &mut impl Rng) -> String {
    let base = loop {
        let base: [u8; 9] = std::array::from_fn(|_| rng.random_range(0..10));
        // Repeated digits (111.111.111-11) pass the arithmetic but are rejected by the Receita.
        if base.iter().any(|digit| *digit != base[0]) {
            break base;
        }
    };
    let [first, second] = cpf_check_digits(&base);
    let d = |range: std::ops::Range<usize>| digits_text(&base[range]);
    format!("{}.{}.{}-{first}{second}", d(0..3), d(3..6), d(6..9))
}

/// A valid CNPJ formatted `00.000.000/0000-00`; most companies are the head office (`0001`).
pub fn random_cnpj(rng: &mut impl Rng) -> String {
    let mut base = [0u8; 12];
    for digit in &mut base[..8] {
        *digit = rng.random_range(0..10);
    }
    let branch = if rng.random_bool(0.9) { 1 } else { rng.random_range(2..10) };
    base[8..].copy_from_slice(&[0, 0, 0, branch]);
    let [first, second] = cnpj_check_digits(&base);
    let d = |range: std::ops::Range<usize>| digits_text(&base[range]);
    format!("{}.{}.{}/{}-{first}{second}", d(0..2), d(2..5), d(5..8), d(8..12))
}

fn digits_text(digits: &[u8]) -> String {
    digits.iter().map(|digit| char::from(b'0' + digit)).collect()
}

#[cfg(test)]
fn digits_of(formatted: &str) -> Vec<u8> {
    formatted.bytes().filter(u8::is_ascii_digit).map(|byte| byte - b'0').collect()
}

/// Whether a formatted CPF's check digits are right (the generator's tests use it too).
#[cfg(test)]
pub fn is_valid_cpf(formatted: &str) -> bool {
    let digits = digits_of(formatted);
    let Ok(base) = <[u8; 9]>::try_from(&digits[..9.min(digits.len())]) else {
        return false;
    };
    digits.len() == 11 && cpf_check_digits(&base) == [digits[9], digits[10]]
}

#[cfg(test)]
pub fn is_valid_cnpj(formatted: &str) -> bool {
    let digits = digits_of(formatted);
    let Ok(base) = <[u8; 12]>::try_from(&digits[..12.min(digits.len())]) else {
        return false;
    };
    digits.len() == 14 && cnpj_check_digits(&base) == [digits[12], digits[13]]
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn known_valid_cpfs() {
        assert_eq!(cpf_check_digits(&[5, 2, 9, 9, 8, 2, 2, 4, 7]), [2, 5]);
        assert_eq!(cpf_check_digits(&[1, 1, 1, 4, 4, 4, 7, 7, 7]), [3, 5]);
        // Remainder below 2 → 0: 123.456.789-09.
        assert_eq!(cpf_check_digits(&[1, 2, 3, 4, 5, 6, 7, 8, 9]), [0, 9]);
        assert!(is_valid_cpf("529.982.247-25"));
        assert!(!is_valid_cpf("529.982.247-26"));
    }

    #[test]
    fn known_valid_cnpjs() {
        assert_eq!(cnpj_check_digits(&[1, 1, 4, 4, 4, 7, 7, 7, 0, 0, 0, 1]), [6, 1]);
        assert_eq!(cnpj_check_digits(&[1, 1, 2, 2, 2, 3, 3, 3, 0, 0, 0, 1]), [8, 1]);
        assert!(is_valid_cnpj("11.444.777/0001-61"));
        assert!(!is_valid_cnpj("11.444.777/0001-62"));
    }

    #[test]
    fn generated_documents_are_valid_and_formatted() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let cpf = random_cpf(&mut rng);
            assert!(is_valid_cpf(&cpf), "{cpf}");
            assert_eq!(cpf.len(), 14, "{cpf}");
            assert_eq!((&cpf[3..4], &cpf[7..8], &cpf[11..12]), (".", ".", "-"), "{cpf}");
            let cnpj = random_cnpj(&mut rng);
            assert!(is_valid_cnpj(&cnpj), "{cnpj}");
            assert_eq!(cnpj.len(), 18, "{cnpj}");
            assert_eq!((&cnpj[2..3], &cnpj[6..7], &cnpj[10..11], &cnpj[15..16]), (".", ".", "/", "-"), "{cnpj}");
        }
    }
}
