//! The billing emails: a payment that did not go through (a renewal, or the first one).

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

/// The first payment of a subscription failed or needs the customer's action (3-D
/// Secure): the subscription never started, so there is no plan that "stays active".
pub fn first_payment_problem(base_url: &str, to: &str, invoice_url: Option<&str>) -> Email {
    let link = invoice_url.map_or_else(
        || format!("{}/billing", base_url.trim_end_matches('/')),
        str::to_owned,
    );
    Email::with_link(
        to,
        "Your audiostudio subscription did not start",
        "We could not collect the first payment for your subscription, so it did not start and you are still on the free plan. Complete or retry the payment to start it.",
        "Complete the payment",
        &link,
        "If you already completed the payment, ignore this message.",
    )
}
