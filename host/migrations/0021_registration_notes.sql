-- What registration has to say about a ready version besides its state: today, that Winch
-- (the baseline compiler) could not compile its component and Cranelift compiled it at once.
ALTER TABLE pipeline_versions ADD COLUMN registration_note TEXT;
