<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="fr_FR" sourcelanguage="en">
<context>
    <name>AgentTableModel</name>
    <message>
        <source>Ready</source>
        <translation>Prêt</translation>
    </message>
    <message>
        <source>Not Ready</source>
        <translation>Non prêt</translation>
    </message>
    <message>
        <source>After Call Work</source>
        <translation>Après-appel</translation>
    </message>
    <message>
        <source>Server lost</source>
        <translation>Serveur perdu</translation>
    </message>
    <message>
        <source>Failing over</source>
        <translation>En basculement</translation>
    </message>
    <message>
        <source>Logged out</source>
        <translation>Déconnecté</translation>
    </message>
    <message>
        <source>Agent</source>
        <translation>Agent</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>Nom</translation>
    </message>
    <message>
        <source>State</source>
        <translation>État</translation>
    </message>
    <message>
        <source>Reason</source>
        <translation>Motif</translation>
    </message>
    <message>
        <source>Time in state</source>
        <translation>Temps dans l&apos;état</translation>
    </message>
    <message>
        <source>Site</source>
        <translation>Site</translation>
    </message>
    <message>
        <source>Role</source>
        <translation>Rôle</translation>
    </message>
    <message>
        <source>Epoch</source>
        <translation>Génération</translation>
    </message>
    <message>
        <source>Interaction</source>
        <translation>Interaction</translation>
    </message>
    <message>
        <source>Last failover</source>
        <translation>Dernier basculement</translation>
    </message>
    <message>
        <source>On hold</source>
        <translation>En attente</translation>
    </message>
    <message>
        <source>Busy</source>
        <translation>Occupé</translation>
    </message>
    <message>
        <source>Ringing</source>
        <translation>Sonne</translation>
    </message>
    <message>
        <source>primary at {0}</source>
        <translation>principal sur {0}</translation>
    </message>
    <message>
        <source>primary at {0}, unreachable</source>
        <translation>principal sur {0}, injoignable</translation>
    </message>
    <message>
        <source>none ({0} lost)</source>
        <translation>aucun ({0} perdu)</translation>
    </message>
    <message>
        <source>none (left {0})</source>
        <translation>aucun (a quitté {0})</translation>
    </message>
    <message>
        <source>none</source>
        <translation>aucun</translation>
    </message>
    <message>
        <source>Own state: {0}</source>
        <translation>État choisi : {0}</translation>
    </message>
    <message>
        <source>Interaction in hand: {0}</source>
        <translation>Interaction en cours : {0}</translation>
    </message>
    <message>
        <source>Reason: {0}</source>
        <translation>Motif : {0}</translation>
    </message>
    <message>
        <source>Over the {0} min threshold for {1}</source>
        <translation>Au-delà du seuil de {0} min pour {1}</translation>
    </message>
    <message>
        <source>Set by supervisor {0}</source>
        <translation>Fixé par le superviseur {0}</translation>
    </message>
    <message>
        <source>Place: {0}</source>
        <translation>Poste : {0}</translation>
    </message>
    <message>
        <source>Last failover: {0}</source>
        <translation>Dernier basculement : {0}</translation>
    </message>
</context>
<context>
    <name>Attention</name>
    <message>
        <source>Sound is unavailable: Qt Multimedia could not be loaded ({0}).</source>
        <translation>Le son n&apos;est pas disponible : Qt Multimedia n&apos;a pas pu être chargé ({0}).</translation>
    </message>
    <message>
        <source>No sound server (PulseAudio or PipeWire) runs for this session: offers will not ring (the pop-up and the flashing window still show them).</source>
        <translation>Aucun serveur de son (PulseAudio ou PipeWire) ne tourne pour cette session : les offres ne sonneront pas (la fenêtre surgissante et la fenêtre qui clignote les signalent toujours).</translation>
    </message>
    <message>
        <source>No audio output was found on this computer: offers will not ring (the pop-up and the flashing window still show them).</source>
        <translation>Aucune sortie audio n&apos;a été trouvée sur cet ordinateur : les offres ne sonneront pas (la fenêtre surgissante et la fenêtre qui clignote les signalent toujours).</translation>
    </message>
    <message>
        <source>Offer notification</source>
        <translation>Notification d&apos;offre</translation>
    </message>
    <message>
        <source>Agent Desktop – New offer</source>
        <translation>Poste agent – Nouvelle offre</translation>
    </message>
    <message>
        <source>Offer</source>
        <translation>Offre</translation>
    </message>
    <message>
        <source>Time left to answer</source>
        <translation>Temps restant pour répondre</translation>
    </message>
    <message>
        <source>&amp;Accept</source>
        <translation>&amp;Accepter</translation>
    </message>
    <message>
        <source>Accept from the notification</source>
        <translation>Accepter depuis la notification</translation>
    </message>
    <message>
        <source>&amp;Show</source>
        <translation>&amp;Afficher</translation>
    </message>
    <message>
        <source>Show the main window</source>
        <translation>Afficher la fenêtre principale</translation>
    </message>
</context>
<context>
    <name>BannerWidget</name>
    <message>
        <source>Failover banner</source>
        <translation>Bandeau de basculement</translation>
    </message>
    <message>
        <source>Failover status</source>
        <translation>État du basculement</translation>
    </message>
    <message>
        <source>Failover phases</source>
        <translation>Étapes du basculement</translation>
    </message>
    <message>
        <source>Actions during failover</source>
        <translation>Actions pendant le basculement</translation>
    </message>
    <message>
        <source>Dismiss failover banner</source>
        <translation>Fermer le bandeau de basculement</translation>
    </message>
    <message>
        <source>Dismiss</source>
        <translation>Fermer</translation>
    </message>
    <message>
        <source>Dismiss (Esc)</source>
        <translation>Fermer (Échap)</translation>
    </message>
    <message>
        <source>Your actions: {0}</source>
        <translation>Vos actions : {0}</translation>
    </message>
</context>
<context>
    <name>Chat</name>
    <message>
        <source>sending…</source>
        <translation>envoi…</translation>
    </message>
    <message>
        <source>You</source>
        <translation>Vous</translation>
    </message>
    <message>
        <source>Customer</source>
        <translation>Client</translation>
    </message>
</context>
<context>
    <name>ConnectionPanel</name>
    <message>
        <source>Connections</source>
        <translation>Connexions</translation>
    </message>
    <message>
        <source>Each server with its site, role and last heartbeat</source>
        <translation>Chaque serveur avec son site, son rôle et son dernier battement</translation>
    </message>
    <message>
        <source>Site</source>
        <translation>Site</translation>
    </message>
    <message>
        <source>Address</source>
        <translation>Adresse</translation>
    </message>
    <message>
        <source>Role</source>
        <translation>Rôle</translation>
    </message>
    <message>
        <source>Last heartbeat</source>
        <translation>Dernier battement</translation>
    </message>
</context>
<context>
    <name>ConversationView</name>
    <message>
        <source>Chat transcript</source>
        <translation>Historique du chat</translation>
    </message>
    <message>
        <source>Each line: who, when, then the text</source>
        <translation>Chaque ligne : qui, quand, puis le texte</translation>
    </message>
    <message>
        <source>Reply</source>
        <translation>Réponse</translation>
    </message>
    <message>
        <source>Enter sends; Shift+Enter starts a new line</source>
        <translation>Entrée envoie ; Maj+Entrée passe à la ligne</translation>
    </message>
    <message>
        <source>Type a reply… (Enter sends, Shift+Enter: new line)</source>
        <translation>Saisissez une réponse… (Entrée envoie, Maj+Entrée : nouvelle ligne)</translation>
    </message>
    <message>
        <source>Send</source>
        <translation>Envoyer</translation>
    </message>
    <message>
        <source>Send reply</source>
        <translation>Envoyer la réponse</translation>
    </message>
    <message>
        <source>Or Enter in the reply box</source>
        <translation>Ou Entrée dans la zone de réponse</translation>
    </message>
    <message>
        <source>C&amp;hat transcript:</source>
        <translation>&amp;Historique du chat :</translation>
    </message>
    <message>
        <source>Repl&amp;y:</source>
        <translation>Ré&amp;ponse :</translation>
    </message>
    <message>
        <source>Email body</source>
        <translation>E-mail reçu</translation>
    </message>
    <message>
        <source>The customer&apos;s email, read only</source>
        <translation>L&apos;e-mail du client, en lecture seule</translation>
    </message>
    <message>
        <source>Reply draft</source>
        <translation>Brouillon de réponse</translation>
    </message>
    <message>
        <source>Saved as you type</source>
        <translation>Enregistré pendant la saisie</translation>
    </message>
    <message>
        <source>Write the reply…</source>
        <translation>Rédigez la réponse…</translation>
    </message>
    <message>
        <source>Email &amp;body:</source>
        <translation>&amp;E-mail reçu :</translation>
    </message>
    <message>
        <source>Rep&amp;ly draft:</source>
        <translation>&amp;Brouillon de réponse :</translation>
    </message>
    <message>
        <source>(no text)</source>
        <translation>(aucun texte)</translation>
    </message>
</context>
<context>
    <name>Credentials</name>
    <message>
        <source>The system keyring cannot be used ({0}).</source>
        <translation>Le trousseau du système est inutilisable ({0}).</translation>
    </message>
    <message>
        <source>No system keyring is available on this computer, so passwords cannot be remembered.</source>
        <translation>Aucun trousseau système n&apos;est disponible sur cet ordinateur : les mots de passe ne peuvent pas être mémorisés.</translation>
    </message>
    <message>
        <source>The password was not remembered: no system keyring is available on this computer.</source>
        <translation>Le mot de passe n&apos;a pas été mémorisé : aucun trousseau système n&apos;est disponible sur cet ordinateur.</translation>
    </message>
    <message>
        <source>The password was not remembered: {0}</source>
        <translation>Le mot de passe n&apos;a pas été mémorisé : {0}</translation>
    </message>
</context>
<context>
    <name>DesktopController</name>
    <message>
        <source>Show Agent Desktop</source>
        <translation>Afficher le poste agent</translation>
    </message>
    <message>
        <source>Quit</source>
        <translation>Quitter</translation>
    </message>
    <message>
        <source>Logging in on site {0}…</source>
        <translation>Connexion au site {0}…</translation>
    </message>
    <message>
        <source>Copied the session summary and events for support.</source>
        <translation>Résumé de la session et événements copiés pour le support.</translation>
    </message>
    <message>
        <source>Chat line not sent: {0}</source>
        <translation>Message de chat non envoyé : {0}</translation>
    </message>
    <message>
        <source>logged out</source>
        <translation>déconnecté</translation>
    </message>
    <message>
        <source>site {0}</source>
        <translation>site {0}</translation>
    </message>
    <message>
        <source>no server (moving…)</source>
        <translation>aucun serveur (basculement…)</translation>
    </message>
    <message>
        <source>no server</source>
        <translation>aucun serveur</translation>
    </message>
    <message>
        <source>Agent {0} on {1}</source>
        <translation>Agent {0} sur {1}</translation>
    </message>
</context>
<context>
    <name>EventLogWidget</name>
    <message>
        <source>Filter events</source>
        <translation>Filtrer les événements</translation>
    </message>
    <message>
        <source>Filter…</source>
        <translation>Filtrer…</translation>
    </message>
    <message>
        <source>Event category</source>
        <translation>Catégorie d&apos;événement</translation>
    </message>
    <message>
        <source>All events</source>
        <translation>Tous les événements</translation>
    </message>
    <message>
        <source>&amp;Copy for support</source>
        <translation>&amp;Copier pour le support</translation>
    </message>
    <message>
        <source>Copy for support</source>
        <translation>Copier pour le support</translation>
    </message>
    <message>
        <source>Copy the session summary and the visible events to the clipboard</source>
        <translation>Copier le résumé de la session et les événements affichés dans le presse-papiers</translation>
    </message>
    <message>
        <source>Event log</source>
        <translation>Journal des événements</translation>
    </message>
    <message>
        <source>Time</source>
        <translation>Heure</translation>
    </message>
    <message>
        <source>Category</source>
        <translation>Catégorie</translation>
    </message>
    <message>
        <source>Event</source>
        <translation>Événement</translation>
    </message>
</context>
<context>
    <name>Figures</name>
    <message>
        <source>Ready</source>
        <translation>Prêt</translation>
    </message>
    <message>
        <source>Ringing</source>
        <translation>Sonne</translation>
    </message>
    <message>
        <source>Talking / busy</source>
        <translation>En communication / occupé</translation>
    </message>
    <message>
        <source>After Call Work</source>
        <translation>Après-appel</translation>
    </message>
    <message>
        <source>Not Ready</source>
        <translation>Non prêt</translation>
    </message>
    <message>
        <source>No queue figures yet.</source>
        <translation>Pas encore de chiffres de files.</translation>
    </message>
    <message>
        <source>Last figures from site {0}; no server holds your login right now.</source>
        <translation>Derniers chiffres du site {0} ; aucun serveur ne tient votre connexion pour l&apos;instant.</translation>
    </message>
    <message>
        <source>Figures from site {0}; waiting for site {1}&apos;s.</source>
        <translation>Chiffres du site {0} ; en attente de ceux du site {1}.</translation>
    </message>
    <message>
        <source>Figures from site {0}, counted since that server started.</source>
        <translation>Chiffres du site {0}, comptés depuis le démarrage de ce serveur.</translation>
    </message>
</context>
<context>
    <name>FiguresPanel</name>
    <message>
        <source>Your figures</source>
        <translation>Vos chiffres</translation>
    </message>
    <message>
        <source>Handled today</source>
        <translation>Traitées aujourd&apos;hui</translation>
    </message>
    <message>
        <source>Average handle time</source>
        <translation>Durée moyenne de traitement</translation>
    </message>
    <message>
        <source>Time per state today</source>
        <translation>Temps par état aujourd&apos;hui</translation>
    </message>
    <message>
        <source>Your queues</source>
        <translation>Vos files</translation>
    </message>
    <message>
        <source>Queue</source>
        <translation>File</translation>
    </message>
    <message>
        <source>Waiting</source>
        <translation>En attente</translation>
    </message>
    <message>
        <source>Longest wait</source>
        <translation>Plus longue attente</translation>
    </message>
    <message>
        <source>Whose queue figures</source>
        <translation>Origine des chiffres des files</translation>
    </message>
    <message>
        <source>Handled today:</source>
        <translation>Traitées aujourd&apos;hui :</translation>
    </message>
    <message>
        <source>Average handle time:</source>
        <translation>Durée moyenne de traitement :</translation>
    </message>
    <message>
        <source>Time per state:</source>
        <translation>Temps par état :</translation>
    </message>
</context>
<context>
    <name>InteractionControls</name>
    <message>
        <source>Hold</source>
        <translation>Mise en attente</translation>
    </message>
    <message>
        <source>Put the call on hold, or take it off hold</source>
        <translation>Mettre l&apos;appel en attente, ou le reprendre</translation>
    </message>
    <message>
        <source>Hold time</source>
        <translation>Durée d&apos;attente</translation>
    </message>
    <message>
        <source>T&amp;ransfer…</source>
        <translation>Trans&amp;férer…</translation>
    </message>
    <message>
        <source>Transfer</source>
        <translation>Transférer</translation>
    </message>
    <message>
        <source>To a queue or an agent</source>
        <translation>Vers une file ou un agent</translation>
    </message>
    <message>
        <source>Consultation</source>
        <translation>Consultation</translation>
    </message>
    <message>
        <source>Why the hold or transfer was refused</source>
        <translation>Pourquoi la mise en attente ou le transfert a été refusé</translation>
    </message>
    <message>
        <source>Co&amp;mplete transfer</source>
        <translation>Fina&amp;liser le transfert</translation>
    </message>
    <message>
        <source>Complete transfer</source>
        <translation>Finaliser le transfert</translation>
    </message>
    <message>
        <source>Ta&amp;ke back</source>
        <translation>&amp;Garder l&apos;interaction</translation>
    </message>
    <message>
        <source>Take back</source>
        <translation>Garder l&apos;interaction</translation>
    </message>
    <message>
        <source>End the consultation; the interaction stays with you</source>
        <translation>Mettre fin à la consultation ; l&apos;interaction reste chez vous</translation>
    </message>
</context>
<context>
    <name>InteractionPanel</name>
    <message>
        <source>After Call Work timer</source>
        <translation>Chronomètre de l&apos;après-appel</translation>
    </message>
    <message>
        <source>No interaction in hand.</source>
        <translation>Aucune interaction en cours.</translation>
    </message>
    <message>
        <source>No interaction</source>
        <translation>Aucune interaction</translation>
    </message>
    <message>
        <source>Active interactions</source>
        <translation>Interactions en cours</translation>
    </message>
    <message>
        <source>Interaction</source>
        <translation>Interaction</translation>
    </message>
    <message>
        <source>Customer data</source>
        <translation>Données client</translation>
    </message>
    <message>
        <source>Notes</source>
        <translation>Notes</translation>
    </message>
    <message>
        <source>Saved as you type</source>
        <translation>Enregistrées pendant la saisie</translation>
    </message>
    <message>
        <source>Notes…</source>
        <translation>Notes…</translation>
    </message>
    <message>
        <source>Disposition</source>
        <translation>Qualification</translation>
    </message>
    <message>
        <source>Required: choose one for each interaction</source>
        <translation>Obligatoire : à choisir pour chaque interaction</translation>
    </message>
    <message>
        <source>&amp;Done</source>
        <translation>Ter&amp;miner</translation>
    </message>
    <message>
        <source>Done</source>
        <translation>Terminer</translation>
    </message>
    <message>
        <source>Why Done was refused</source>
        <translation>Pourquoi Terminer a été refusé</translation>
    </message>
    <message>
        <source>&amp;Notes:</source>
        <translation>&amp;Notes :</translation>
    </message>
    <message>
        <source>Dis&amp;position:</source>
        <translation>&amp;Qualification :</translation>
    </message>
</context>
<context>
    <name>Interactions</name>
    <message>
        <source>Shortcut {0}</source>
        <translation>Raccourci {0}</translation>
    </message>
    <message>
        <source>Voice call</source>
        <translation>Appel vocal</translation>
    </message>
    <message>
        <source>Chat</source>
        <translation>Chat</translation>
    </message>
    <message>
        <source>Email</source>
        <translation>E-mail</translation>
    </message>
    <message>
        <source>the customer hung up</source>
        <translation>le client a raccroché</translation>
    </message>
    <message>
        <source>another agent took it</source>
        <translation>un autre agent l&apos;a prise</translation>
    </message>
    <message>
        <source>the server withdrew it</source>
        <translation>le serveur l&apos;a retirée</translation>
    </message>
    <message>
        <source>the new server did not take it over</source>
        <translation>le nouveau serveur ne l&apos;a pas reprise</translation>
    </message>
    <message>
        <source>the server does not know it</source>
        <translation>le serveur ne la connaît pas</translation>
    </message>
    <message>
        <source>you were logged out</source>
        <translation>vous avez été déconnecté</translation>
    </message>
    <message>
        <source>you transferred it</source>
        <translation>vous l&apos;avez transférée</translation>
    </message>
    <message>
        <source>not answered in time</source>
        <translation>sans réponse à temps</translation>
    </message>
    <message>
        <source>its server was lost</source>
        <translation>son serveur a été perdu</translation>
    </message>
    <message>
        <source>Choose…</source>
        <translation>Choisir…</translation>
    </message>
    <message>
        <source>Choose a disposition for this interaction first (Alt+P), then Done.</source>
        <translation>Choisissez d&apos;abord une qualification pour cette interaction (Alt+Q), puis Terminer.</translation>
    </message>
    <message>
        <source>Interaction</source>
        <translation>Interaction</translation>
    </message>
    <message>
        <source>New voice call</source>
        <translation>Nouvel appel vocal</translation>
    </message>
    <message>
        <source>New chat</source>
        <translation>Nouveau chat</translation>
    </message>
    <message>
        <source>New email</source>
        <translation>Nouvel e-mail</translation>
    </message>
    <message>
        <source>New {0}</source>
        <translation>Nouveau : {0}</translation>
    </message>
    <message>
        <source>Time is up</source>
        <translation>Temps écoulé</translation>
    </message>
    <message>
        <source>Answer within {0}</source>
        <translation>Répondre sous {0}</translation>
    </message>
    <message>
        <source>Subject</source>
        <translation>Objet</translation>
    </message>
    <message>
        <source>No customer data</source>
        <translation>Aucune donnée client</translation>
    </message>
    <message>
        <source>{0}: {1}</source>
        <translation>{0} : {1}</translation>
    </message>
    <message>
        <source>, completing…</source>
        <translation>, en cours de clôture…</translation>
    </message>
    <message>
        <source>, moving…</source>
        <translation>, en basculement…</translation>
    </message>
    <message>
        <source>After Call Work {0}</source>
        <translation>Après-appel {0}</translation>
    </message>
    <message>
        <source>After Call Work {0} – {1} left</source>
        <translation>Après-appel {0} – reste {1}</translation>
    </message>
    <message>
        <source>Busy – {0} interactions</source>
        <translation>Occupé – {0} interactions</translation>
    </message>
    <message>
        <source>Talking – {0}</source>
        <translation>En communication – {0}</translation>
    </message>
    <message>
        <source>Busy – {0}</source>
        <translation>Occupé – {0}</translation>
    </message>
    <message>
        <source>On hold – {0}</source>
        <translation>En attente – {0}</translation>
    </message>
    <message>
        <source>Consulting – agent {0}</source>
        <translation>Consultation – agent {0}</translation>
    </message>
    <message>
        <source>Ringing – {0}</source>
        <translation>Sonne – {0}</translation>
    </message>
    <message>
        <source>{0} left</source>
        <translation>reste {0}</translation>
    </message>
    <message>
        <source>Interaction {0} completed ({1})</source>
        <translation>Interaction {0} terminée ({1})</translation>
    </message>
    <message>
        <source>Interaction {0} completed</source>
        <translation>Interaction {0} terminée</translation>
    </message>
    <message>
        <source>Interaction {0} ended: {1}</source>
        <translation>Interaction {0} terminée : {1}</translation>
    </message>
    <message>
        <source>Offer {0} withdrawn: {1}</source>
        <translation>Offre {0} retirée : {1}</translation>
    </message>
    <message>
        <source>Missed at {0}: {1} – not answered in time. It went back to its queue.</source>
        <translation>Manquée à {0} : {1} – sans réponse à temps. Elle est retournée dans sa file.</translation>
    </message>
    <message>
        <source>Accept {0}</source>
        <translation>Accepter {0}</translation>
    </message>
    <message>
        <source>Reject {0}</source>
        <translation>Refuser {0}</translation>
    </message>
    <message>
        <source>Save notes {0}</source>
        <translation>Enregistrer les notes de {0}</translation>
    </message>
    <message>
        <source>Done {0}</source>
        <translation>Terminer {0}</translation>
    </message>
    <message>
        <source>Hold {0}</source>
        <translation>Mettre {0} en attente</translation>
    </message>
    <message>
        <source>Resume {0}</source>
        <translation>Reprendre {0}</translation>
    </message>
    <message>
        <source>Transfer {0}</source>
        <translation>Transférer {0}</translation>
    </message>
    <message>
        <source>Complete transfer of {0}</source>
        <translation>Finaliser le transfert de {0}</translation>
    </message>
    <message>
        <source>Take back {0}</source>
        <translation>Garder {0}</translation>
    </message>
    <message>
        <source>{0}: failed ({1}: {2})</source>
        <translation>{0} : échec ({1} : {2})</translation>
    </message>
</context>
<context>
    <name>LoginPanel</name>
    <message>
        <source>Sign in as a supervisor to see the reporting streams.</source>
        <translation>Connectez-vous en tant que superviseur pour voir les flux de supervision.</translation>
    </message>
    <message>
        <source>Supervisor id</source>
        <translation>Identifiant de superviseur</translation>
    </message>
    <message>
        <source>Password</source>
        <translation>Mot de passe</translation>
    </message>
    <message>
        <source>Remember</source>
        <translation>Mémoriser</translation>
    </message>
    <message>
        <source>Connect</source>
        <translation>Se connecter</translation>
    </message>
    <message>
        <source>Enter your supervisor id and password.</source>
        <translation>Saisissez votre identifiant de superviseur et votre mot de passe.</translation>
    </message>
</context>
<context>
    <name>LoginWindow</name>
    <message>
        <source>Agent Desktop – Log in</source>
        <translation>Poste agent – Connexion</translation>
    </message>
    <message>
        <source>Log in</source>
        <translation>Connexion</translation>
    </message>
    <message>
        <source>Agent id</source>
        <translation>Identifiant d&apos;agent</translation>
    </message>
    <message>
        <source>Password</source>
        <translation>Mot de passe</translation>
    </message>
    <message>
        <source>Place or extension</source>
        <translation>Poste ou extension</translation>
    </message>
    <message>
        <source>Preferred site</source>
        <translation>Site préféré</translation>
    </message>
    <message>
        <source>The site whose server holds your login</source>
        <translation>Le site dont le serveur tient votre connexion</translation>
    </message>
    <message>
        <source>&amp;Remember me on this computer</source>
        <translation>Se souvenir de &amp;moi sur cet ordinateur</translation>
    </message>
    <message>
        <source>Remember me</source>
        <translation>Se souvenir de moi</translation>
    </message>
    <message>
        <source>Keep the password in the system keyring</source>
        <translation>Garder le mot de passe dans le trousseau du système</translation>
    </message>
    <message>
        <source>Why remember me is unavailable</source>
        <translation>Pourquoi « Se souvenir de moi » est indisponible</translation>
    </message>
    <message>
        <source>Login error</source>
        <translation>Erreur de connexion</translation>
    </message>
    <message>
        <source>Login progress</source>
        <translation>Progression de la connexion</translation>
    </message>
    <message>
        <source>&amp;Log in</source>
        <translation>Se &amp;connecter</translation>
    </message>
    <message>
        <source>&amp;Settings…</source>
        <translation>&amp;Paramètres…</translation>
    </message>
    <message>
        <source>Settings</source>
        <translation>Paramètres</translation>
    </message>
    <message>
        <source>&amp;Agent id:</source>
        <translation>Identifiant d&apos;&amp;agent :</translation>
    </message>
    <message>
        <source>&amp;Password:</source>
        <translation>&amp;Mot de passe :</translation>
    </message>
    <message>
        <source>Pla&amp;ce / extension:</source>
        <translation>&amp;Poste / extension :</translation>
    </message>
    <message>
        <source>Preferred s&amp;ite:</source>
        <translation>S&amp;ite préféré :</translation>
    </message>
    <message>
        <source>Agent Desktop</source>
        <translation>Poste agent</translation>
    </message>
    <message>
        <source>Site {0} ({1})</source>
        <translation>Site {0} ({1})</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Agent Desktop</source>
        <translation>Poste agent</translation>
    </message>
    <message>
        <source>State icon</source>
        <translation>Icône d&apos;état</translation>
    </message>
    <message>
        <source>Logged out</source>
        <translation>Déconnecté</translation>
    </message>
    <message>
        <source>Agent state</source>
        <translation>État de l&apos;agent</translation>
    </message>
    <message>
        <source>Time in state</source>
        <translation>Temps dans l&apos;état</translation>
    </message>
    <message>
        <source>Agent and site</source>
        <translation>Agent et site</translation>
    </message>
    <message>
        <source>&amp;Ready</source>
        <translation>P&amp;rêt</translation>
    </message>
    <message>
        <source>&amp;Not Ready</source>
        <translation>&amp;Non prêt</translation>
    </message>
    <message>
        <source>&amp;After Call Work</source>
        <translation>&amp;Après-appel</translation>
    </message>
    <message>
        <source>&amp;Log out</source>
        <translation>Se &amp;déconnecter</translation>
    </message>
    <message>
        <source>&amp;Settings…</source>
        <translation>&amp;Paramètres…</translation>
    </message>
    <message>
        <source>Choose Not Ready &amp;reason</source>
        <translation>Choisir le &amp;motif de Non prêt</translation>
    </message>
    <message>
        <source>Ready</source>
        <translation>Prêt</translation>
    </message>
    <message>
        <source>Not Ready reason</source>
        <translation>Motif de Non prêt</translation>
    </message>
    <message>
        <source>Not Ready</source>
        <translation>Non prêt</translation>
    </message>
    <message>
        <source>After Call Work</source>
        <translation>Après-appel</translation>
    </message>
    <message>
        <source>E&amp;xtend wrap-up</source>
        <translation>&amp;Prolonger l&apos;après-appel</translation>
    </message>
    <message>
        <source>Extend wrap-up</source>
        <translation>Prolonger l&apos;après-appel</translation>
    </message>
    <message>
        <source>Log out</source>
        <translation>Se déconnecter</translation>
    </message>
    <message>
        <source>Missed offer</source>
        <translation>Offre manquée</translation>
    </message>
    <message>
        <source>Details</source>
        <translation>Détails</translation>
    </message>
    <message>
        <source>&amp;Interactions</source>
        <translation>&amp;Interactions</translation>
    </message>
    <message>
        <source>&amp;Figures</source>
        <translation>&amp;Chiffres</translation>
    </message>
    <message>
        <source>&amp;Connections</source>
        <translation>Conne&amp;xions</translation>
    </message>
    <message>
        <source>&amp;Event log</source>
        <translation>&amp;Journal</translation>
    </message>
    <message>
        <source>&amp;State</source>
        <translation>É&amp;tat</translation>
    </message>
    <message>
        <source>&amp;Tools</source>
        <translation>&amp;Outils</translation>
    </message>
    <message numerus="yes">
        <source>%n interaction(s)</source>
        <translation>
            <numerusform>%n interaction</numerusform>
            <numerusform>%n interactions</numerusform>
        </translation>
    </message>
    <message>
        <source>Log out and quit ends your login: the interaction is not completed and leaves your hands.</source>
        <translation>Se déconnecter et quitter met fin à votre connexion : l&apos;interaction n&apos;est pas terminée et vous est retirée.</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>Annuler</translation>
    </message>
    <message>
        <source>&amp;Log out and quit</source>
        <translation>Se &amp;déconnecter et quitter</translation>
    </message>
    <message>
        <source>Log out and quit</source>
        <translation>Se déconnecter et quitter</translation>
    </message>
    <message>
        <source>Hide to tray keeps you logged in: the interaction stays with you, and the tray icon brings the window back.</source>
        <translation>Masquer dans la barre vous garde connecté : l&apos;interaction reste avec vous, et l&apos;icône de la barre rouvre la fenêtre.</translation>
    </message>
    <message>
        <source>&amp;Hide to tray</source>
        <translation>&amp;Masquer dans la barre</translation>
    </message>
    <message>
        <source>Hide to tray</source>
        <translation>Masquer dans la barre</translation>
    </message>
    <message>
        <source>Agent Desktop – Close</source>
        <translation>Poste agent – Fermer</translation>
    </message>
    <message>
        <source>You have work in hand: {0}.</source>
        <translation>Vous avez du travail en cours : {0}.</translation>
    </message>
    <message>
        <source>Shortcut {0}</source>
        <translation>Raccourci {0}</translation>
    </message>
    <message>
        <source>&amp;Demo</source>
        <translation>&amp;Démo</translation>
    </message>
    <message>
        <source>Demo</source>
        <translation>Démo</translation>
    </message>
    <message>
        <source>{0} · after this: {1}</source>
        <translation>{0} · ensuite : {1}</translation>
    </message>
    <message numerus="yes">
        <source>%n extension(s) left</source>
        <translation>
            <numerusform>%n prolongation restante</numerusform>
            <numerusform>%n prolongations restantes</numerusform>
        </translation>
    </message>
</context>
<context>
    <name>OfferToast</name>
    <message>
        <source>Interaction offer</source>
        <translation>Offre d&apos;interaction</translation>
    </message>
    <message>
        <source>Offer media</source>
        <translation>Média de l&apos;offre</translation>
    </message>
    <message>
        <source>Offer</source>
        <translation>Offre</translation>
    </message>
    <message>
        <source>Offer customer data</source>
        <translation>Données client de l&apos;offre</translation>
    </message>
    <message>
        <source>Time left to answer</source>
        <translation>Temps restant pour répondre</translation>
    </message>
    <message>
        <source>&amp;Accept</source>
        <translation>&amp;Accepter</translation>
    </message>
    <message>
        <source>Accept</source>
        <translation>Accepter</translation>
    </message>
    <message>
        <source>Re&amp;ject</source>
        <translation>&amp;Refuser</translation>
    </message>
    <message>
        <source>Reject</source>
        <translation>Refuser</translation>
    </message>
</context>
<context>
    <name>Presenter</name>
    <message>
        <source>Ready</source>
        <translation>Prêt</translation>
    </message>
    <message>
        <source>Not Ready</source>
        <translation>Non prêt</translation>
    </message>
    <message>
        <source>After Call Work</source>
        <translation>Après-appel</translation>
    </message>
    <message>
        <source>Site {0}</source>
        <translation>Site {0}</translation>
    </message>
    <message>
        <source>Logged out</source>
        <translation>Déconnecté</translation>
    </message>
    <message>
        <source>never</source>
        <translation>jamais</translation>
    </message>
    <message>
        <source>{0:.1f} s ago</source>
        <translation>il y a {0:.1f} s</translation>
    </message>
    <message>
        <source>{0} ago</source>
        <translation>il y a {0}</translation>
    </message>
    <message>
        <source>down, retrying</source>
        <translation>hors service, nouvelle tentative</translation>
    </message>
    <message>
        <source>reconnecting</source>
        <translation>reconnexion</translation>
    </message>
    <message>
        <source>primary, logged in</source>
        <translation>principal, connecté</translation>
    </message>
    <message>
        <source>secondary, standby</source>
        <translation>secondaire, en réserve</translation>
    </message>
    <message>
        <source>connected</source>
        <translation>connecté</translation>
    </message>
    <message>
        <source>connecting</source>
        <translation>connexion en cours</translation>
    </message>
    <message>
        <source>down</source>
        <translation>hors service</translation>
    </message>
    <message>
        <source>Wrong agent id or password. Check both and try again.</source>
        <translation>Identifiant d&apos;agent ou mot de passe erroné. Vérifiez les deux et réessayez.</translation>
    </message>
    <message>
        <source>Agent {agent} is already logged in elsewhere, and the server&apos;s duplicate-login policy refused this second login. Log out on the other desktop (or ask a supervisor to) and try again.</source>
        <translation>L&apos;agent {agent} est déjà connecté ailleurs, et la règle du serveur contre les connexions en double a refusé cette seconde connexion. Déconnectez-vous sur l&apos;autre poste (ou demandez-le à un superviseur), puis réessayez.</translation>
    </message>
    <message>
        <source>This account may not log in as an agent. Ask your supervisor which id to use.</source>
        <translation>Ce compte ne peut pas se connecter comme agent. Demandez à votre superviseur quel identifiant utiliser.</translation>
    </message>
    <message>
        <source>Your earlier session could not be resumed. Enter your password and log in again.</source>
        <translation>Votre session précédente n&apos;a pas pu être reprise. Saisissez votre mot de passe et reconnectez-vous.</translation>
    </message>
    <message>
        <source>Your earlier session has expired. Enter your password and log in again.</source>
        <translation>Votre session précédente a expiré. Saisissez votre mot de passe et reconnectez-vous.</translation>
    </message>
    <message>
        <source>A newer login of agent {agent} exists. Enter your password to log in here again.</source>
        <translation>Une connexion plus récente de l&apos;agent {agent} existe. Saisissez votre mot de passe pour vous reconnecter ici.</translation>
    </message>
    <message>
        <source>The server does not know the Not Ready reason you started with. Log in again.</source>
        <translation>Le serveur ne connaît pas le motif de Non prêt avec lequel vous avez commencé. Reconnectez-vous.</translation>
    </message>
    <message>
        <source>You were logged out: agent {agent} logged in on another desktop, and the server&apos;s duplicate-login policy ends the older login.</source>
        <translation>Vous avez été déconnecté : l&apos;agent {agent} s&apos;est connecté sur un autre poste, et la règle du serveur contre les connexions en double met fin à la plus ancienne.</translation>
    </message>
    <message>
        <source>Supervisor {by} logged you out.</source>
        <translation>Le superviseur {by} vous a déconnecté.</translation>
    </message>
    <message>
        <source>Your login was taken over by a newer login of agent {agent} at another site.</source>
        <translation>Votre connexion a été reprise par une connexion plus récente de l&apos;agent {agent} sur un autre site.</translation>
    </message>
    <message>
        <source>Enter your agent id.</source>
        <translation>Saisissez votre identifiant d&apos;agent.</translation>
    </message>
    <message>
        <source>Enter your password.</source>
        <translation>Saisissez votre mot de passe.</translation>
    </message>
    <message>
        <source>Choose a site to log in to (none is configured: ask IT for the site list).</source>
        <translation>Choisissez un site où vous connecter (aucun n&apos;est configuré : demandez la liste des sites au service informatique).</translation>
    </message>
    <message>
        <source>Site {0} refused the login: {1}</source>
        <translation>Le site {0} a refusé la connexion : {1}</translation>
    </message>
    <message>
        <source>A supervisor logged you out.</source>
        <translation>Un superviseur vous a déconnecté.</translation>
    </message>
    <message>
        <source>You were logged out ({reason}).</source>
        <translation>Vous avez été déconnecté ({reason}).</translation>
    </message>
    <message>
        <source>site {0} ({1})</source>
        <translation>site {0} ({1})</translation>
    </message>
    <message>
        <source>No server is reachable: tried {0}. Check your network connection, or ask IT whether the servers are running. Still trying…</source>
        <translation>Aucun serveur n&apos;est joignable : essayé {0}. Vérifiez votre connexion réseau, ou demandez au service informatique si les serveurs fonctionnent. Nouvelle tentative…</translation>
    </message>
    <message>
        <source>Your login on another desktop (site {0}) was ended: the servers log out the older login when the same agent logs in again</source>
        <translation>Votre connexion sur un autre poste (site {0}) a été fermée : les serveurs déconnectent la plus ancienne quand le même agent se reconnecte</translation>
    </message>
    <message>
        <source>pending</source>
        <translation>en attente</translation>
    </message>
    <message>
        <source>The login could not be moved to another site. See the event log.</source>
        <translation>La connexion n&apos;a pas pu passer sur un autre site. Voir le journal des événements.</translation>
    </message>
    <message>
        <source>applied</source>
        <translation>appliqué</translation>
    </message>
    <message>
        <source>replaced by a later choice</source>
        <translation>remplacé par un choix ultérieur</translation>
    </message>
    <message>
        <source>failed: {0}</source>
        <translation>échec : {0}</translation>
    </message>
    <message>
        <source>site {0}</source>
        <translation>site {0}</translation>
    </message>
    <message>
        <source>the other site</source>
        <translation>l&apos;autre site</translation>
    </message>
    <message>
        <source>Moved back to {0} in {1}</source>
        <translation>Revenu sur {0} en {1}</translation>
    </message>
    <message>
        <source>Moved to {0} in {1}</source>
        <translation>Passé sur {0} en {1}</translation>
    </message>
    <message>
        <source>{0}; {1}, {2}, kept</source>
        <translation>{0} ; {1}, {2}, conservé</translation>
    </message>
    <message>
        <source>{0}; now {1} (was {2})</source>
        <translation>{0} ; maintenant {1} (avant : {2})</translation>
    </message>
    <message>
        <source>Moving back to site {0}… {1}</source>
        <translation>Retour au site {0}… {1}</translation>
    </message>
    <message>
        <source>Site {0} lost</source>
        <translation>Site {0} perdu</translation>
    </message>
    <message>
        <source>Connection lost</source>
        <translation>Connexion perdue</translation>
    </message>
    <message>
        <source>{0}: detecting… {1}</source>
        <translation>{0} : détection… {1}</translation>
    </message>
    <message>
        <source>{0}: logging in on {1}… {2}</source>
        <translation>{0} : connexion sur {1}… {2}</translation>
    </message>
    <message>
        <source>Detecting the loss</source>
        <translation>Détection de la perte</translation>
    </message>
    <message>
        <source>Logging in on site {0}</source>
        <translation>Connexion au site {0}</translation>
    </message>
    <message>
        <source>State restored</source>
        <translation>État rétabli</translation>
    </message>
    <message>
        <source>Connection</source>
        <translation>Connexion</translation>
    </message>
    <message>
        <source>Failover</source>
        <translation>Basculement</translation>
    </message>
    <message>
        <source>Login</source>
        <translation>Connexion de l&apos;agent</translation>
    </message>
    <message>
        <source>State</source>
        <translation>État</translation>
    </message>
    <message>
        <source>Action</source>
        <translation>Action</translation>
    </message>
    <message>
        <source>Interaction</source>
        <translation>Interaction</translation>
    </message>
    <message>
        <source>Error</source>
        <translation>Erreur</translation>
    </message>
    <message>
        <source>Failover done</source>
        <translation>Basculement terminé</translation>
    </message>
    <message>
        <source>Site {0} stopped answering; moving your login to the other site.</source>
        <translation>Le site {0} ne répond plus ; votre connexion passe sur l&apos;autre site.</translation>
    </message>
    <message>
        <source>No server is reachable. Your state is kept and the desktop keeps trying.</source>
        <translation>Aucun serveur n&apos;est joignable. Votre état est conservé et le poste continue d&apos;essayer.</translation>
    </message>
    <message>
        <source>Logged in here</source>
        <translation>Connecté ici</translation>
    </message>
    <message>
        <source>State changed by the server</source>
        <translation>État changé par le serveur</translation>
    </message>
    <message>
        <source>{0} set you to {1}.</source>
        <translation>{0} vous a mis en {1}.</translation>
    </message>
</context>
<context>
    <name>Settings</name>
    <message>
        <source>Fixed by the demo, which runs its own local sites</source>
        <translation>Fixé par la démo, qui lance ses propres sites locaux</translation>
    </message>
    <message>
        <source>Set by IT in {0}</source>
        <translation>Fixé par le service informatique dans {0}</translation>
    </message>
</context>
<context>
    <name>SettingsWindow</name>
    <message>
        <source>Agent Desktop – Settings</source>
        <translation>Poste agent – Paramètres</translation>
    </message>
    <message>
        <source>Settings</source>
        <translation>Paramètres</translation>
    </message>
    <message>
        <source>Sites</source>
        <translation>Sites</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>Nom</translation>
    </message>
    <message>
        <source>URL</source>
        <translation>URL</translation>
    </message>
    <message>
        <source>&amp;Add site</source>
        <translation>&amp;Ajouter un site</translation>
    </message>
    <message>
        <source>Add site</source>
        <translation>Ajouter un site</translation>
    </message>
    <message>
        <source>&amp;Remove site</source>
        <translation>&amp;Retirer le site</translation>
    </message>
    <message>
        <source>Remove site</source>
        <translation>Retirer le site</translation>
    </message>
    <message>
        <source>Preferred site</source>
        <translation>Site préféré</translation>
    </message>
    <message>
        <source>Heartbeat timeout</source>
        <translation>Délai de battement</translation>
    </message>
    <message>
        <source>Failback policy</source>
        <translation>Retour au site préféré</translation>
    </message>
    <message>
        <source>Never move back</source>
        <translation>Ne jamais revenir</translation>
    </message>
    <message>
        <source>Move back when idle</source>
        <translation>Revenir quand inactif</translation>
    </message>
    <message>
        <source>Theme</source>
        <translation>Thème</translation>
    </message>
    <message>
        <source>The system&apos;s</source>
        <translation>Celui du système</translation>
    </message>
    <message>
        <source>Light</source>
        <translation>Clair</translation>
    </message>
    <message>
        <source>Dark</source>
        <translation>Sombre</translation>
    </message>
    <message>
        <source>Font size</source>
        <translation>Taille du texte</translation>
    </message>
    <message>
        <source>{0} pt</source>
        <translation>{0} pt</translation>
    </message>
    <message>
        <source>Language</source>
        <translation>Langue</translation>
    </message>
    <message>
        <source>Applies the next time the desktop starts</source>
        <translation>S&apos;applique au prochain démarrage du poste</translation>
    </message>
    <message>
        <source>&amp;Ring when an offer arrives</source>
        <translation>&amp;Sonner à l&apos;arrivée d&apos;une offre</translation>
    </message>
    <message>
        <source>Ring for offers</source>
        <translation>Sonnerie des offres</translation>
    </message>
    <message>
        <source>Ring volume</source>
        <translation>Volume de la sonnerie</translation>
    </message>
    <message>
        <source>Ring output device</source>
        <translation>Périphérique de sortie de la sonnerie</translation>
    </message>
    <message>
        <source>Why offers do not ring</source>
        <translation>Pourquoi les offres ne sonnent pas</translation>
    </message>
    <message>
        <source>Settings that cannot be changed here</source>
        <translation>Paramètres non modifiables ici</translation>
    </message>
    <message>
        <source>Settings error</source>
        <translation>Erreur de paramètres</translation>
    </message>
    <message>
        <source>&amp;Save</source>
        <translation>&amp;Enregistrer</translation>
    </message>
    <message>
        <source>Save settings</source>
        <translation>Enregistrer les paramètres</translation>
    </message>
    <message>
        <source>&amp;Close</source>
        <translation>&amp;Fermer</translation>
    </message>
    <message>
        <source>Close settings</source>
        <translation>Fermer les paramètres</translation>
    </message>
    <message>
        <source>&amp;Preferred site:</source>
        <translation>Site &amp;préféré :</translation>
    </message>
    <message>
        <source>&amp;Heartbeat timeout:</source>
        <translation>Délai de &amp;battement :</translation>
    </message>
    <message>
        <source>&amp;Failback:</source>
        <translation>&amp;Retour au site préféré :</translation>
    </message>
    <message>
        <source>&amp;Theme:</source>
        <translation>&amp;Thème :</translation>
    </message>
    <message>
        <source>Font si&amp;ze:</source>
        <translation>&amp;Taille du texte :</translation>
    </message>
    <message>
        <source>&amp;Language:</source>
        <translation>&amp;Langue :</translation>
    </message>
    <message>
        <source>Ring &amp;volume:</source>
        <translation>&amp;Volume de la sonnerie :</translation>
    </message>
    <message>
        <source>Ring ou&amp;tput:</source>
        <translation>S&amp;ortie de la sonnerie :</translation>
    </message>
    <message>
        <source>Sites (changes apply at the next login):</source>
        <translation>Sites (les changements s&apos;appliquent à la prochaine connexion) :</translation>
    </message>
    <message>
        <source>Close without saving (Esc)</source>
        <translation>Fermer sans enregistrer (Échap)</translation>
    </message>
    <message>
        <source>Greyed-out settings are {0}.</source>
        <translation>Les paramètres grisés sont {0}.</translation>
    </message>
    <message>
        <source>The system&apos;s default</source>
        <translation>Celle du système</translation>
    </message>
    <message>
        <source>{0} (not connected)</source>
        <translation>{0} (non branché)</translation>
    </message>
</context>
<context>
    <name>SupervisorWindow</name>
    <message>
        <source>Ready</source>
        <translation>Prêt</translation>
    </message>
    <message>
        <source>Ringing</source>
        <translation>Sonne</translation>
    </message>
    <message>
        <source>Busy</source>
        <translation>Occupé</translation>
    </message>
    <message>
        <source>Not Ready</source>
        <translation>Non prêt</translation>
    </message>
    <message>
        <source>After Call Work</source>
        <translation>Après-appel</translation>
    </message>
    <message>
        <source>In failover</source>
        <translation>En basculement</translation>
    </message>
    <message>
        <source>Logged out</source>
        <translation>Déconnecté</translation>
    </message>
    <message>
        <source>Queue</source>
        <translation>File</translation>
    </message>
    <message>
        <source>Waiting</source>
        <translation>En attente</translation>
    </message>
    <message>
        <source>Longest wait</source>
        <translation>Plus longue attente</translation>
    </message>
    <message>
        <source>Service level</source>
        <translation>Niveau de service</translation>
    </message>
    <message>
        <source>Answered / offered</source>
        <translation>Répondues / proposées</translation>
    </message>
    <message>
        <source>Abandoned</source>
        <translation>Abandonnées</translation>
    </message>
    <message>
        <source>Sites</source>
        <translation>Sites</translation>
    </message>
    <message>
        <source>Supervisor — agent status</source>
        <translation>Superviseur — état des agents</translation>
    </message>
    <message>
        <source>Supervisor view</source>
        <translation>Vue superviseur</translation>
    </message>
    <message>
        <source>Filter: agent, name, state, reason or site</source>
        <translation>Filtre : agent, nom, état, motif ou site</translation>
    </message>
    <message>
        <source>No agent selected</source>
        <translation>Aucun agent sélectionné</translation>
    </message>
    <message>
        <source>Force Not Ready</source>
        <translation>Forcer Non prêt</translation>
    </message>
    <message>
        <source>Force logout</source>
        <translation>Forcer la déconnexion</translation>
    </message>
    <message>
        <source>Agents and queues</source>
        <translation>Agents et files</translation>
    </message>
    <message>
        <source>&amp;Agents</source>
        <translation>&amp;Agents</translation>
    </message>
    <message>
        <source>&amp;Queues (all sites)</source>
        <translation>&amp;Files (tous les sites)</translation>
    </message>
    <message>
        <source>&lt;b&gt;Sites&lt;/b&gt;</source>
        <translation>&lt;b&gt;Sites&lt;/b&gt;</translation>
    </message>
    <message>
        <source>&lt;b&gt;Queues&lt;/b&gt;</source>
        <translation>&lt;b&gt;Files&lt;/b&gt;</translation>
    </message>
    <message>
        <source>Site</source>
        <translation>Site</translation>
    </message>
    <message>
        <source>&lt;b&gt;Disconnects and failovers&lt;/b&gt;</source>
        <translation>&lt;b&gt;Déconnexions et basculements&lt;/b&gt;</translation>
    </message>
    <message>
        <source>Queues over all sites</source>
        <translation>Files sur tous les sites</translation>
    </message>
    <message>
        <source>Connection</source>
        <translation>Connexion</translation>
    </message>
    <message>
        <source>Last event</source>
        <translation>Dernier événement</translation>
    </message>
    <message>
        <source>Logged in</source>
        <translation>Connectés</translation>
    </message>
    <message>
        <source>connected</source>
        <translation>connecté</translation>
    </message>
    <message>
        <source>connected, reading snapshot</source>
        <translation>connecté, lecture de l&apos;instantané</translation>
    </message>
    <message>
        <source>not connected: {0}</source>
        <translation>non connecté : {0}</translation>
    </message>
    <message>
        <source>not connected</source>
        <translation>non connecté</translation>
    </message>
    <message>
        <source>{0} (as of {1})</source>
        <translation>{0} (au {1})</translation>
    </message>
    <message>
        <source>{0:.0f} % in {1:.0f} s</source>
        <translation>{0:.0f} % en {1:.0f} s</translation>
    </message>
    <message>
        <source>{0} (unavailable)</source>
        <translation>{0} (indisponible)</translation>
    </message>
    <message>
        <source>This server does not report queue statistics yet ({0}).</source>
        <translation>Ce serveur ne publie pas encore de statistiques de files ({0}).</translation>
    </message>
    <message>
        <source>These servers do not report queue statistics yet ({0}).</source>
        <translation>Ces serveurs ne publient pas encore de statistiques de files ({0}).</translation>
    </message>
    <message>
        <source>Unavailable: {0}. Those figures are the last ones received and may be out of date.</source>
        <translation>Indisponibles : {0}. Ces chiffres sont les derniers reçus et peuvent être périmés.</translation>
    </message>
    <message>
        <source>Site {0} is unavailable: figures as of {1}</source>
        <translation>Le site {0} est indisponible : chiffres au {1}</translation>
    </message>
    <message>
        <source>Below the {0:.0f} % target</source>
        <translation>Sous l&apos;objectif de {0:.0f} %</translation>
    </message>
    <message>
        <source>Queue {0} at site {1}: service level {2:.0f} % is below the {3:.0f} % target (answered within {4:.0f} s)</source>
        <translation>File {0} du site {1} : le niveau de service de {2:.0f} % est sous l&apos;objectif de {3:.0f} % (réponse en {4:.0f} s)</translation>
    </message>
    <message>
        <source>{0} agents failed over</source>
        <translation>{0} agents ont basculé</translation>
    </message>
    <message>
        <source>unreachable: site {0}</source>
        <translation>injoignable : site {0}</translation>
    </message>
    <message>
        <source>in failover: {0} agent(s)</source>
        <translation>en basculement : {0} agent(s)</translation>
    </message>
    <message>
        <source>no agent in failover</source>
        <translation>aucun agent en basculement</translation>
    </message>
    <message>
        <source>Now: {0}.</source>
        <translation>Maintenant : {0}.</translation>
    </message>
    <message>
        <source>Not Ready ({0}) for {1}</source>
        <translation>Non prêt ({0}) pour {1}</translation>
    </message>
    <message>
        <source>{0} is logged out at once on site {1}</source>
        <translation>{0} est déconnecté immédiatement sur le site {1}</translation>
    </message>
    <message>
        <source>The agent</source>
        <translation>L&apos;agent</translation>
    </message>
    <message>
        <source>; the interaction in hand ({0}) leaves their hands without being completed.</source>
        <translation> ; l&apos;interaction en cours ({0}) lui est retirée sans être terminée.</translation>
    </message>
    <message>
        <source>Supervisor — Force logout</source>
        <translation>Superviseur — Forcer la déconnexion</translation>
    </message>
    <message>
        <source>Log out agent {0} {1}?</source>
        <translation>Déconnecter l&apos;agent {0} {1} ?</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>Annuler</translation>
    </message>
    <message>
        <source>&amp;Log out agent</source>
        <translation>&amp;Déconnecter l&apos;agent</translation>
    </message>
    <message>
        <source>Log out agent</source>
        <translation>Déconnecter l&apos;agent</translation>
    </message>
    <message>
        <source>Logout of {0}</source>
        <translation>Déconnexion de {0}</translation>
    </message>
    <message>
        <source>{0}: sending…</source>
        <translation>{0} : envoi…</translation>
    </message>
    <message>
        <source>{0}: done</source>
        <translation>{0} : fait</translation>
    </message>
    <message>
        <source>{0}: refused — {1}</source>
        <translation>{0} : refusé — {1}</translation>
    </message>
</context>
<context>
    <name>SupervisorWords</name>
    <message>
        <source>closed normally</source>
        <translation>fermée normalement</translation>
    </message>
    <message>
        <source>the server is shutting down</source>
        <translation>le serveur s&apos;arrête</translation>
    </message>
    <message>
        <source>the connection dropped without warning (network or server failure)</source>
        <translation>la connexion est tombée sans prévenir (panne du réseau ou du serveur)</translation>
    </message>
    <message>
        <source>the server received data it could not read</source>
        <translation>le serveur a reçu des données illisibles</translation>
    </message>
    <message>
        <source>a message was too big for the server</source>
        <translation>un message était trop gros pour le serveur</translation>
    </message>
    <message>
        <source>the server had an internal error</source>
        <translation>le serveur a eu une erreur interne</translation>
    </message>
    <message>
        <source>the server heard no heartbeat in time</source>
        <translation>le serveur n&apos;a pas reçu de battement à temps</translation>
    </message>
    <message>
        <source>the server closed it after too many errors</source>
        <translation>le serveur l&apos;a fermée après trop d&apos;erreurs</translation>
    </message>
    <message>
        <source>the server does not speak this version of the protocol</source>
        <translation>le serveur ne parle pas cette version du protocole</translation>
    </message>
    <message>
        <source>authentication between the sites failed</source>
        <translation>l&apos;authentification entre les sites a échoué</translation>
    </message>
    <message>
        <source>the server closed it for too much traffic</source>
        <translation>le serveur l&apos;a fermée pour trafic excessif</translation>
    </message>
    <message>
        <source>a newer login replaced this one</source>
        <translation>une connexion plus récente a remplacé celle-ci</translation>
    </message>
    <message>
        <source>connection refused: no server is running at that address, or it is not accepting connections</source>
        <translation>connexion refusée : aucun serveur ne tourne à cette adresse, ou il n&apos;accepte pas de connexions</translation>
    </message>
    <message>
        <source>the server&apos;s name is not known</source>
        <translation>le nom du serveur est inconnu</translation>
    </message>
    <message>
        <source>no network route to the server</source>
        <translation>aucune route réseau vers le serveur</translation>
    </message>
    <message>
        <source>the server did not answer in time</source>
        <translation>le serveur n&apos;a pas répondu à temps</translation>
    </message>
    <message>
        <source>the server&apos;s TLS certificate was not accepted</source>
        <translation>le certificat TLS du serveur n&apos;a pas été accepté</translation>
    </message>
    <message>
        <source>closed by the server (code {0})</source>
        <translation>fermée par le serveur (code {0})</translation>
    </message>
    <message>
        <source>the server stopped answering (no heartbeat)</source>
        <translation>le serveur ne répond plus (pas de battement)</translation>
    </message>
    <message>
        <source>the connection dropped</source>
        <translation>la connexion est tombée</translation>
    </message>
    <message>
        <source>unreachable: {0}</source>
        <translation>injoignable : {0}</translation>
    </message>
    <message>
        <source>lost: {0}; reconnecting</source>
        <translation>perdue : {0} ; reconnexion</translation>
    </message>
</context>
<context>
    <name>TransferPicker</name>
    <message>
        <source>Transfer target</source>
        <translation>Destinataire du transfert</translation>
    </message>
    <message>
        <source>Transfer to</source>
        <translation>Transférer vers</translation>
    </message>
    <message>
        <source>A queue or an agent</source>
        <translation>Une file ou un agent</translation>
    </message>
    <message>
        <source>Queue or agent</source>
        <translation>File ou agent</translation>
    </message>
    <message>
        <source>The queue&apos;s name or the agent&apos;s id</source>
        <translation>Le nom de la file ou l&apos;identifiant de l&apos;agent</translation>
    </message>
    <message>
        <source>Queue name or agent id</source>
        <translation>Nom de file ou identifiant d&apos;agent</translation>
    </message>
    <message>
        <source>Queues and agents</source>
        <translation>Files et agents</translation>
    </message>
    <message>
        <source>Every queue, and every agent logged in at any site, with its site and whether it is available now</source>
        <translation>Chaque file, et chaque agent connecté sur un site, avec son site et s&apos;il est disponible maintenant</translation>
    </message>
    <message>
        <source>Asking the server for the queues and agents…</source>
        <translation>Demande des files et des agents au serveur…</translation>
    </message>
    <message>
        <source>Transfer no&amp;w</source>
        <translation>&amp;Lancer le transfert</translation>
    </message>
    <message>
        <source>Transfer now</source>
        <translation>Lancer le transfert</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>Fermer</translation>
    </message>
    <message>
        <source>Close the transfer picker</source>
        <translation>Fermer le choix du transfert</translation>
    </message>
    <message>
        <source>Esc</source>
        <translation>Échap</translation>
    </message>
    <message>
        <source>Tar&amp;get:</source>
        <translation>&amp;Vers :</translation>
    </message>
    <message>
        <source>Pic&amp;k:</source>
        <translation>C&amp;hoisir :</translation>
    </message>
    <message>
        <source>No queue or agent to transfer to: type one</source>
        <translation>Aucune file ni aucun agent vers qui transférer : saisissez-en un</translation>
    </message>
    <message>
        <source>Choose a queue or an agent…</source>
        <translation>Choisissez une file ou un agent…</translation>
    </message>
    <message>
        <source>Not available now: a transfer to this agent would be refused</source>
        <translation>Indisponible maintenant : un transfert vers cet agent serait refusé</translation>
    </message>
</context>
<context>
    <name>Transfers</name>
    <message>
        <source>&amp;Hold</source>
        <translation>Mettre en attent&amp;e</translation>
    </message>
    <message>
        <source>Res&amp;ume</source>
        <translation>Re&amp;prendre</translation>
    </message>
    <message>
        <source>Blind</source>
        <translation>Sans consulter</translation>
    </message>
    <message>
        <source>Consult first</source>
        <translation>Consulter d&apos;abord</translation>
    </message>
    <message>
        <source>&amp;Blind</source>
        <translation>&amp;Sans consulter</translation>
    </message>
    <message>
        <source>C&amp;onsult first</source>
        <translation>Cons&amp;ulter d&apos;abord</translation>
    </message>
    <message>
        <source>Queue</source>
        <translation>File</translation>
    </message>
    <message>
        <source>Agent</source>
        <translation>Agent</translation>
    </message>
    <message>
        <source>waiting for an answer</source>
        <translation>en attente de réponse</translation>
    </message>
    <message>
        <source>accepted: complete the transfer or take it back</source>
        <translation>acceptée : finalisez le transfert ou gardez l&apos;interaction</translation>
    </message>
    <message>
        <source>declined; the interaction stays with you</source>
        <translation>refusée ; l&apos;interaction reste chez vous</translation>
    </message>
    <message>
        <source>not answered in time; the interaction stays with you</source>
        <translation>sans réponse à temps ; l&apos;interaction reste chez vous</translation>
    </message>
    <message>
        <source>taken back</source>
        <translation>interaction gardée</translation>
    </message>
    <message>
        <source>transfer completed</source>
        <translation>transfert effectué</translation>
    </message>
    <message>
        <source>ended; the interaction stays with you</source>
        <translation>terminée ; l&apos;interaction reste chez vous</translation>
    </message>
    <message>
        <source>On hold {0}</source>
        <translation>En attente {0}</translation>
    </message>
    <message>
        <source>agent {0} (queue {1})</source>
        <translation>l&apos;agent {0} (file {1})</translation>
    </message>
    <message>
        <source>agent {0}</source>
        <translation>l&apos;agent {0}</translation>
    </message>
    <message>
        <source>queue {0}</source>
        <translation>la file {0}</translation>
    </message>
    <message>
        <source>Queue {0}</source>
        <translation>File {0}</translation>
    </message>
    <message>
        <source>{0} · site {1} · available</source>
        <translation>{0} · site {1} · disponible</translation>
    </message>
    <message>
        <source>{0} · site {1} · not available</source>
        <translation>{0} · site {1} · indisponible</translation>
    </message>
    <message>
        <source>Consulting {0}: {1}</source>
        <translation>Consultation de {0} : {1}</translation>
    </message>
    <message>
        <source>Agent {0} asks you to take this over</source>
        <translation>L&apos;agent {0} vous demande de la reprendre</translation>
    </message>
    <message>
        <source>Transferred by agent {0}</source>
        <translation>Transférée par l&apos;agent {0}</translation>
    </message>
    <message>
        <source>Notes: {0}</source>
        <translation>Notes : {0}</translation>
    </message>
    <message>
        <source>Accepted: waiting for agent {0} to hand it over</source>
        <translation>Acceptée : en attente de la remise par l&apos;agent {0}</translation>
    </message>
    <message>
        <source>Transfer of {0} to {1}: {2}</source>
        <translation>Transfert de {0} vers {1} : {2}</translation>
    </message>
    <message>
        <source>Hold refused: {0}</source>
        <translation>Mise en attente refusée : {0}</translation>
    </message>
    <message>
        <source>Resume refused: {0}</source>
        <translation>Reprise refusée : {0}</translation>
    </message>
    <message>
        <source>Transfer refused: {0}</source>
        <translation>Transfert refusé : {0}</translation>
    </message>
    <message>
        <source>Complete transfer refused: {0}</source>
        <translation>Finalisation du transfert refusée : {0}</translation>
    </message>
    <message>
        <source>Take back refused: {0}</source>
        <translation>Impossible de garder l&apos;interaction : {0}</translation>
    </message>
    <message>
        <source>{0} refused: {1}</source>
        <translation>{0} refusé : {1}</translation>
    </message>
</context>
<context>
    <name>Tray</name>
    <message>
        <source>Agent Desktop</source>
        <translation>Poste agent</translation>
    </message>
    <message>
        <source>Agent Desktop – {0}</source>
        <translation>Poste agent – {0}</translation>
    </message>
</context>
</TS>
