//! Row decoding for both backends without the `sqlx` derive macros (which would build SQLite a
//! second time for the proc-macro).

/// Implements `FromRow` for `SqliteRow` and `PgRow`, reading each field from the column of the
/// same name.
macro_rules! from_row {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> for $ty {
            fn from_row(row: &'r sqlx::sqlite::SqliteRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok($ty { $($field: row.try_get(stringify!($field))?),* })
            }
        }
        impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for $ty {
            fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok($ty { $($field: row.try_get(stringify!($field))?),* })
            }
        }
    };
}
pub(crate) use from_row;
