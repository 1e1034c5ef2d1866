-- Dropping the table signs every account out (the tokens are gone; `xbot auth login` again).
DROP TABLE IF EXISTS x_tokens;
