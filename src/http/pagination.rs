//! Cursor pagination, the same on every list route: `limit` and `cursor` in, one page
//! and the `next_cursor` of its last row out.

use crate::http::error::{ApiError, ApiResult};

/// What a list route's `cursor` holds: parsed from and rendered to the query text.
pub trait Cursor: Sized {
    fn parse(text: &str) -> Option<Self>;
    fn render(&self) -> String;
}

/// A row id: the page continues below it.
impl Cursor for i64 {
    fn parse(text: &str) -> Option<i64> {
        text.parse().ok().filter(|n| *n > 0)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

/// An opaque key (an email, an id) of at most 64 characters.
impl Cursor for String {
    fn parse(text: &str) -> Option<String> {
        (text.chars().count() <= 64).then(|| text.to_owned())
    }
    fn render(&self) -> String {
        self.clone()
    }
}

/// A validated `limit` and `cursor`.
#[derive(Debug, Clone)]
pub struct PageRequest<C> {
    pub limit: u32,
    pub cursor: Option<C>,
}

impl<C: Cursor> PageRequest<C> {
    /// Parses `limit` (1 to `max`, `default` when absent) and `cursor`.
    pub fn parse(
        limit: Option<&str>,
        cursor: Option<&str>,
        default: u32,
        max: u32,
    ) -> ApiResult<PageRequest<C>> {
        let limit = page_limit(limit, default, max)?;
        let cursor = match cursor {
            None => None,
            Some(text) => Some(
                C::parse(text)
                    .ok_or_else(|| ApiError::field("cursor", "is not a cursor from this list"))?,
            ),
        };
        Ok(PageRequest { limit, cursor })
    }

    /// How many rows to fetch: one more than the page, to learn whether another follows.
    pub fn fetch(&self) -> u32 {
        self.limit + 1
    }
}

/// One page of rows and the cursor of the next, if any.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Cuts `rows` (fetched with `PageRequest::fetch`) to the page; `cursor_of` gives the
    /// cursor of the page's last row when more rows follow.
    pub fn from_rows<C: Cursor>(
        mut rows: Vec<T>,
        limit: u32,
        cursor_of: impl Fn(&T) -> C,
    ) -> Page<T> {
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|row| cursor_of(row).render())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// Parses `limit` the same way on every list route.
pub fn page_limit(limit: Option<&str>, default: u32, max: u32) -> ApiResult<u32> {
    match limit {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::field("limit", format!("must be a number from 1 to {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_knows_whether_another_follows() {
        let request = PageRequest::<i64>::parse(Some("2"), Some("10"), 50, 200).unwrap();
        assert_eq!((request.fetch(), request.cursor), (3, Some(10)));
        let page = Page::from_rows(vec![9i64, 8, 7], 2, |id| *id);
        assert_eq!(
            (page.items, page.next_cursor),
            (vec![9, 8], Some("8".into()))
        );
        let last = Page::from_rows(vec![9i64], 2, |id| *id);
        assert_eq!(last.next_cursor, None);
        assert!(PageRequest::<i64>::parse(Some("0"), None, 50, 200).is_err());
        assert!(PageRequest::<i64>::parse(None, Some("-3"), 50, 200).is_err());
    }
}
