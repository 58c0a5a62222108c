-- The client address a social claim came from (an IPv4 address, or an IPv6 /64 as
-- `x:x:x:x::/64`), so the daily reward cap per address holds across accounts. Claims
-- recorded before this column existed have none and count for no address.
ALTER TABLE social_engagements ADD COLUMN client_ip TEXT;
CREATE INDEX social_engagements_by_client_ip ON social_engagements(client_ip, created_at);
