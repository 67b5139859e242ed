/** An account id's shape (API.md §5 `account create --id`): the accounts repository's, and the one errors.ts tells a `Knouds-Account` value by. */
export const ACCOUNT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
