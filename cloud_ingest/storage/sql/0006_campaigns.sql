-- can2care storage schema, version 6 (docs/schema.md, docs/alerts.md): care campaigns.

-- A campaign reaches a segment of the fleet chosen by registry fields and tags.
CREATE TABLE campaign (
    campaign_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    title       text NOT NULL CHECK (title <> ''),
    message     text,
    segment     jsonb NOT NULL,   -- rules.campaigns.Segment, as given
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    created_by  text NOT NULL CHECK (created_by <> ''),
    created_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

-- One row per vehicle of the campaign: where its outreach stands.
CREATE TABLE campaign_outreach (
    campaign_id bigint NOT NULL REFERENCES campaign ON DELETE CASCADE,
    vehicle_id  text NOT NULL REFERENCES vehicle ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'contacted', 'responded', 'declined', 'completed')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text,
    note        text,
    PRIMARY KEY (campaign_id, vehicle_id)
);

CREATE INDEX campaign_outreach_status ON campaign_outreach (campaign_id, status);

-- Who moved which vehicle's outreach when, append-only.
CREATE TABLE campaign_outreach_audit (
    audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL,
    vehicle_id  text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL CHECK (actor <> ''),
    from_status text,
    to_status   text NOT NULL,
    note        text,
    FOREIGN KEY (campaign_id, vehicle_id) REFERENCES campaign_outreach ON DELETE CASCADE
);

CREATE INDEX campaign_outreach_audit_vehicle ON campaign_outreach_audit (campaign_id, vehicle_id, at);
