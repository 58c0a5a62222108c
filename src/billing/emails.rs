//! The billing emails: a renewal payment that did not go through.

use crate::platform::mail::Email;

/// A renewal payment failed or needs the customer's action.
pub fn payment_problem(base_url: &str, to: &str, invoice_url: Option<&str>) -> Email {
    let link = invoice_url.map_or_else(
        || format!("{}/billing", base_url.trim_end_matches('/')),
        str::to_owned,
    );
    Email::with_link(
        to,
        "Your audiostudio payment did not go through",
        "We could not collect the payment for your subscription. Your plan stays active for now; please update your payment method.",
        "Review the invoice",
        &link,
        "If you already fixed this, ignore this message.",
    )
}
