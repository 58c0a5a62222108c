//! The Stripe endpoints billing calls: customers, catalogue, Checkout and the portal, subscriptions, invoices and payments.

use super::client::Stripe;
use super::errors::StripeResult;
use super::objects::{
    Charge, CheckoutSession, Customer, Invoice, List, PaymentIntent, PortalSession, Price, Product,
    Subscription,
};
use super::params::{CheckoutMode, NewCheckoutSession, Params, Proration, check_id};

impl Stripe {
    // ---- customers -------------------------------------------------------------------

    /// Creates a customer carrying our user id in its metadata.
    pub async fn create_customer(
        &self,
        email: &str,
        user_id: &str,
        idempotency_key: &str,
    ) -> StripeResult<Customer> {
        let params = Params::new()
            .set("email", email)
            .metadata("metadata", &[("user_id", user_id)]);
        self.post("v1/customers", &params, idempotency_key).await
    }

    // ---- catalogue -------------------------------------------------------------------

    pub async fn create_product(
        &self,
        name: &str,
        description: Option<&str>,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> StripeResult<Product> {
        let params = Params::new()
            .set("name", name)
            .set_opt("description", description.filter(|d| !d.is_empty()))
            .metadata("metadata", metadata);
        self.post("v1/products", &params, idempotency_key).await
    }

    /// A price of `unit_amount` (smallest currency unit); recurring every `interval`
    /// (`month`/`year`) when given, one-time otherwise.
    pub async fn create_price(
        &self,
        product: &str,
        unit_amount: i64,
        currency: &str,
        interval: Option<&str>,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> StripeResult<Price> {
        let params = Params::new()
            .set("product", product)
            .set("unit_amount", unit_amount)
            .set("currency", currency)
            .set_opt("recurring[interval]", interval)
            .metadata("metadata", metadata);
        self.post("v1/prices", &params, idempotency_key).await
    }

    // ---- checkout and portal -----------------------------------------------------------

    pub async fn create_checkout_session(
        &self,
        session: &NewCheckoutSession<'_>,
        idempotency_key: &str,
    ) -> StripeResult<CheckoutSession> {
        let mut params = Params::new()
            .set("mode", session.mode.as_str())
            .set("customer", session.customer)
            .set("client_reference_id", session.client_reference_id)
            .set("line_items[0][price]", session.price)
            .set("line_items[0][quantity]", 1)
            .set("success_url", session.success_url)
            .set("cancel_url", session.cancel_url)
            .metadata("metadata", session.metadata);
        params = match session.mode {
            CheckoutMode::Subscription => {
                params.metadata("subscription_data[metadata]", session.metadata)
            }
            CheckoutMode::Payment => {
                params.metadata("payment_intent_data[metadata]", session.metadata)
            }
        };
        self.post("v1/checkout/sessions", &params, idempotency_key)
            .await
    }

    pub async fn get_checkout_session(&self, id: &str) -> StripeResult<CheckoutSession> {
        self.get(&format!("v1/checkout/sessions/{}", check_id(id)?), &[])
            .await
    }

    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> StripeResult<PortalSession> {
        let params = Params::new()
            .set("customer", customer)
            .set("return_url", return_url);
        self.post("v1/billing_portal/sessions", &params, idempotency_key)
            .await
    }

    // ---- subscriptions -----------------------------------------------------------------

    pub async fn get_subscription(&self, id: &str) -> StripeResult<Subscription> {
        self.get(&format!("v1/subscriptions/{}", check_id(id)?), &[])
            .await
    }

    /// Every subscription of a customer, whatever its status (newest first, up to 100).
    pub async fn list_subscriptions(&self, customer: &str) -> StripeResult<List<Subscription>> {
        self.get(
            "v1/subscriptions",
            &[
                ("customer", check_id(customer)?),
                ("status", "all"),
                ("limit", "100"),
            ],
        )
        .await
    }

    /// Updates a subscription with raw parameters.
    pub async fn update_subscription(
        &self,
        id: &str,
        params: &Params,
        idempotency_key: &str,
    ) -> StripeResult<Subscription> {
        self.post(
            &format!("v1/subscriptions/{}", check_id(id)?),
            params,
            idempotency_key,
        )
        .await
    }

    /// Schedules the end of a subscription at its period's end (`true`), or undoes that (`false`: resume).
    pub async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        idempotency_key: &str,
    ) -> StripeResult<Subscription> {
        let params = Params::new().set("cancel_at_period_end", cancel);
        self.update_subscription(id, &params, idempotency_key).await
    }

    /// Moves the subscription's item `item_id` to `price`, prorating as asked. With
    /// `always_invoice` the prorated invoice is charged now and a declined card refuses
    /// the change (402) instead of leaving the subscription past due.
    pub async fn change_subscription_price(
        &self,
        id: &str,
        item_id: &str,
        price: &str,
        proration: Proration,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> StripeResult<Subscription> {
        let mut params = Params::new()
            .set("items[0][id]", item_id)
            .set("items[0][price]", price)
            .set("proration_behavior", proration.as_str())
            .set("cancel_at_period_end", false)
            .metadata("metadata", metadata);
        if proration == Proration::AlwaysInvoice {
            params = params.set("payment_behavior", "error_if_incomplete");
        }
        self.update_subscription(id, &params, idempotency_key).await
    }

    /// Ends a subscription now (no further invoices).
    pub async fn cancel_subscription(&self, id: &str) -> StripeResult<Subscription> {
        self.delete(
            &format!("v1/subscriptions/{}", check_id(id)?),
            &Params::new(),
        )
        .await
    }

    // ---- invoices, charges, payments ------------------------------------------------------

    /// A customer's invoices, newest first (`limit` 1 to 100).
    pub async fn list_invoices(&self, customer: &str, limit: u32) -> StripeResult<List<Invoice>> {
        let limit = limit.clamp(1, 100).to_string();
        self.get(
            "v1/invoices",
            &[("customer", check_id(customer)?), ("limit", &limit)],
        )
        .await
    }

    pub async fn get_invoice(&self, id: &str) -> StripeResult<Invoice> {
        self.get(&format!("v1/invoices/{}", check_id(id)?), &[])
            .await
    }

    pub async fn get_charge(&self, id: &str) -> StripeResult<Charge> {
        self.get(&format!("v1/charges/{}", check_id(id)?), &[])
            .await
    }

    pub async fn get_payment_intent(&self, id: &str) -> StripeResult<PaymentIntent> {
        self.get(&format!("v1/payment_intents/{}", check_id(id)?), &[])
            .await
    }
}
