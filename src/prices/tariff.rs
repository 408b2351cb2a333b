//! The tariff formula: what the user really pays per kWh.
//!
//! ```text
//! price_per_kwh = (spot_per_mwh / 1000 × multiplier + markup_per_kwh + grid_fee_per_kwh(t)) × (1 + vat)
//! ```
//!
//! For a consumer-price quote (Tibber, Octopus, `tou`) multiplier, markup
//! and VAT are already part of the price, so only the grid fee is added
//! (with VAT on it): `price + grid_fee_per_kwh(t) × (1 + vat)`. With the
//! default grid fee of 0 such a quote passes through unchanged.

use chrono::{DateTime, Utc};

use super::tou::TouSchedule;
use super::{Basis, PriceCurve, Quote, Slot};

/// The parts of the formula, validated from `[prices.tariff]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    /// Factor on the spot price (e.g. 1.0; some contracts pass 1.1 × spot).
    pub multiplier: f64,
    /// Supplier's markup per kWh, before VAT.
    pub markup_per_kwh: f64,
    /// VAT as a fraction (0.19 for 19 %).
    pub vat: f64,
    /// Grid fee per kWh before VAT, possibly by time of use; its `default`
    /// is the flat fee.
    pub grid_fee: TouSchedule,
    /// Currency shown with the prices.
    pub currency: String,
}

impl Tariff {
    /// A tariff that passes spot prices through as €/kWh, with no fees.
    pub fn spot_only(currency: impl Into<String>) -> Self {
        Tariff {
            multiplier: 1.0,
            markup_per_kwh: 0.0,
            vat: 0.0,
            grid_fee: TouSchedule {
                tz: chrono_tz::UTC,
                windows: Vec::new(),
                default: Some(0.0),
            },
            currency: currency.into(),
        }
    }

    /// The grid fee at `t`, before VAT (0 where no window or default applies).
    pub fn grid_fee_at(&self, t: DateTime<Utc>) -> f64 {
        self.grid_fee.price_at(t).unwrap_or(0.0)
    }

    /// The consumer price of one provider value at `t`.
    pub fn price(&self, basis: Basis, value: f64, t: DateTime<Utc>) -> f64 {
        let fee = self.grid_fee_at(t);
        match basis {
            Basis::SpotPerMwh => {
                (value / 1000.0 * self.multiplier + self.markup_per_kwh + fee) * (1.0 + self.vat)
            }
            Basis::ConsumerPerKwh => value + fee * (1.0 + self.vat),
        }
    }

    /// Applies the formula to every slot of a quote. A slot that straddles a
    /// grid-fee edge is split there, so every slot has one price.
    pub fn apply(&self, quote: &Quote) -> PriceCurve {
        let mut slots = Vec::with_capacity(quote.slots.len());
        for s in &quote.slots {
            let mut cuts = vec![s.start];
            if !self.grid_fee.windows.is_empty() {
                cuts.extend(self.grid_fee.edges(s.start, s.end));
            }
            cuts.push(s.end);
            for w in cuts.windows(2) {
                slots.push(Slot {
                    start: w[0],
                    end: w[1],
                    price: self.price(quote.basis, s.price, w[0]),
                });
            }
        }
        // The quote's slots were already sorted and disjoint; splitting keeps
        // them so, hence no error is possible here.
        PriceCurve::new(self.currency.clone(), slots).unwrap_or_else(|_| PriceCurve {
            currency: self.currency.clone(),
            slots: Vec::new(),
        })
    }
}
